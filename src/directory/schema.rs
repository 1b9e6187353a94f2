//! The directory schema, loaded from the RFC 4512 definitions in `schema/`.
//!
//! Files hold `attributetype`, `objectclass`, `matchingrule` and `ldapsyntax` definitions in the
//! OpenLDAP `.schema` layout (keyword, then an RFC 4512 description, possibly over several
//! lines). The definitions are kept verbatim for the subschema entry, and resolved once into
//! lookup tables: every name and alias (case-insensitive) and numeric OID maps to one attribute
//! type whose matching rules have been inherited through `SUP`. The server refuses to start on a
//! definition it cannot resolve, so a typo never turns into silently wrong matching.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::Path;

use super::matching::{Rule, RulePurpose, Syntax};

/// The schema files built into the binary, in load order. `schema_dir` in the configuration
/// replaces them with the files of a folder.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "00-syntaxes.schema",
        include_str!("../../schema/00-syntaxes.schema"),
    ),
    (
        "10-core.schema",
        include_str!("../../schema/10-core.schema"),
    ),
    (
        "20-onepages.schema",
        include_str!("../../schema/20-onepages.schema"),
    ),
    (
        "30-monitor.schema",
        include_str!("../../schema/30-monitor.schema"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{file}: {msg}")]
    Definition { file: String, msg: String },
    #[error("reading schema folder {0}: {1}")]
    Io(String, std::io::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    UserApplications,
    DirectoryOperation,
    DistributedOperation,
    DsaOperation,
}

impl Usage {
    pub fn is_operational(self) -> bool {
        self != Usage::UserApplications
    }
}

#[derive(Clone, Debug)]
pub struct AttributeType {
    pub oid: String,
    pub names: Vec<String>,
    pub sup: Option<String>,
    pub equality: Option<Rule>,
    pub ordering: Option<Rule>,
    pub substr: Option<Rule>,
    pub syntax: Syntax,
    /// Whether values travel with the `binary` transfer option (RFC 4522), from the syntax.
    pub transfer: Transfer,
    pub single_value: bool,
    pub no_user_modification: bool,
    pub usage: Usage,
    /// `X-ALLOWED-VALUES`: the only values the type takes (compared ignoring case; no
    /// surrounding spaces). Empty: any value of the syntax.
    pub allowed_values: Vec<String>,
    /// The definition as written, for `attributeTypes` in the subschema entry.
    pub definition: String,
}

/// How an attribute's values travel: RFC 4522's `binary` transfer option, decided by the
/// syntax (the certificate syntaxes require it, RFC 4523; the Binary syntax of RFC 2798's
/// `userSMIMECertificate` and `userPKCS12` allows it). The value is the same with or without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// `;binary` is not an option of the type.
    Plain,
    /// `;binary` may be asked for; values are returned under the name the client asked for.
    BinaryAllowed,
    /// Values are always returned as `NAME;binary`.
    BinaryRequired,
}

impl Transfer {
    fn of_syntax(oid: &str) -> Transfer {
        match oid.strip_prefix("1.3.6.1.4.1.1466.115.121.1.") {
            Some("5") => Transfer::BinaryAllowed,
            Some("8" | "9" | "10" | "49") => Transfer::BinaryRequired,
            _ => Transfer::Plain,
        }
    }
}

/// An attribute description resolved (RFC 4512 §2.5): the type, and whether it carries the
/// `binary` transfer option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Description {
    pub id: AttrId,
    pub binary: bool,
}

/// Why an attribute description is not recognized. This directory recognizes one option, the
/// `binary` transfer option on the types that take it; it holds no tagged values (language
/// tags and the like), and RFC 4512 §2.5.2 makes a description with an unrecognized option
/// unrecognized as a whole: a filter item on it is Undefined, an attribute list naming it
/// returns nothing, a write of it is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unrecognized {
    #[error("unknown attribute type '{0}'")]
    Type(String),
    #[error(
        "'{description}': this directory holds no values with the option '{option}' \
         (an attribute description with an unrecognized option is unrecognized, RFC 4512 §2.5.2)"
    )]
    Option { description: String, option: String },
    #[error(
        "'{0}': the binary transfer option is only for certificate and binary attributes (RFC 4522)"
    )]
    Binary(String),
}

impl AttributeType {
    /// The schema's spelling of the type: its first name, or its OID.
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.oid)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassKind {
    Abstract,
    Structural,
    Auxiliary,
}

#[derive(Clone, Debug)]
pub struct ObjectClass {
    pub oid: String,
    pub names: Vec<String>,
    pub sup: Vec<String>,
    pub kind: ClassKind,
    pub must: Vec<String>,
    pub may: Vec<String>,
    pub definition: String,
}

/// The attributes an object class requires and allows, resolved to ids once.
#[derive(Debug, Default)]
pub struct ClassAttrs {
    pub must: Vec<AttrId>,
    pub may: Vec<AttrId>,
}

/// Index of an attribute type in [`Schema::attribute_types`].
pub type AttrId = usize;

#[derive(Debug, Default)]
pub struct Schema {
    attrs: Vec<AttributeType>,
    /// Lower-case names (and OIDs) to ids.
    attr_by_name: FxHashMap<String, AttrId>,
    /// For each attribute, itself and every type that names it (transitively) as `SUP`.
    subtypes: Vec<Vec<AttrId>>,
    classes: Vec<ObjectClass>,
    class_by_name: FxHashMap<String, usize>,
    /// For each class (same index), its required and allowed attributes as ids.
    class_attrs: Vec<ClassAttrs>,
    rules: Vec<(String, Vec<String>, Rule, String)>,
    rule_by_name: HashMap<String, Rule>,
    rule_purpose: HashMap<String, RulePurpose>,
    syntaxes: Vec<String>,
    /// Site rules for values that the schema files cannot say (the ONE ID domain).
    values: ValueRules,
}

/// Rules for values that depend on the site, not on the schema files.
#[derive(Debug, Clone)]
pub struct ValueRules {
    /// The domain of ONE ID usernames: a person's `uid` is `local@` this domain.
    pub oneid_domain: String,
}

impl Default for ValueRules {
    fn default() -> ValueRules {
        ValueRules {
            oneid_domain: super::ONE_ID_DOMAIN.to_string(),
        }
    }
}

/// One raw definition: its keyword and the tokens inside the parentheses.
struct RawDef {
    keyword: String,
    tokens: Vec<Token>,
    text: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Quoted(String),
    Word(String),
}

impl Schema {
    /// Loads the built-in schema files.
    pub fn builtin() -> Result<Schema, SchemaError> {
        let files: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
            .collect();
        Schema::from_files(&files)
    }

    /// Loads every `*.schema` file of a folder, in name order.
    pub fn from_dir(dir: &Path) -> Result<Schema, SchemaError> {
        let io = |e| SchemaError::Io(dir.display().to_string(), e);
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "schema"))
            .collect();
        names.sort();
        let mut files = Vec::new();
        for path in names {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            files.push((path.display().to_string(), text));
        }
        Schema::from_files(&files)
    }

    pub fn from_files(files: &[(String, String)]) -> Result<Schema, SchemaError> {
        let mut schema = Schema::default();
        let mut attr_defs = Vec::new();
        for (file, text) in files {
            let err = |msg: String| SchemaError::Definition {
                file: file.clone(),
                msg,
            };
            for def in split_definitions(text).map_err(err)? {
                match def.keyword.as_str() {
                    "ldapsyntax" | "ldapsyntaxes" => {
                        schema.syntaxes.push(def.text.clone());
                    }
                    "matchingrule" | "matchingrules" => {
                        let (oid, names) = oid_and_names(&def.tokens).map_err(err)?;
                        let rule = Rule::from_oid(&oid).ok_or_else(|| {
                            err(format!("matching rule {oid} has no implementation"))
                        })?;
                        let purpose = RulePurpose::from_rule_name(
                            names.first().map(String::as_str).unwrap_or(""),
                        );
                        for n in names.iter().chain(std::iter::once(&oid)) {
                            schema.rule_by_name.insert(n.to_ascii_lowercase(), rule);
                            schema.rule_purpose.insert(n.to_ascii_lowercase(), purpose);
                        }
                        schema.rules.push((oid, names, rule, def.text.clone()));
                    }
                    "attributetype" | "attributetypes" => attr_defs.push((file.clone(), def)),
                    "objectclass" | "objectclasses" => {
                        let class = parse_class(&def).map_err(err)?;
                        let idx = schema.classes.len();
                        for n in class.names.iter().chain(std::iter::once(&class.oid)) {
                            schema.class_by_name.insert(n.to_ascii_lowercase(), idx);
                        }
                        schema.classes.push(class);
                    }
                    other => return Err(err(format!("unknown definition keyword '{other}'"))),
                }
            }
        }
        for (file, def) in attr_defs {
            let attr = schema
                .parse_attr(&def)
                .map_err(|msg| SchemaError::Definition {
                    file: file.clone(),
                    msg,
                })?;
            let id = schema.attrs.len();
            for n in attr.names.iter().chain(std::iter::once(&attr.oid)) {
                schema.attr_by_name.insert(n.to_ascii_lowercase(), id);
            }
            schema.attrs.push(attr);
        }
        schema.resolve_inheritance()?;
        schema.check_classes()?;
        schema.class_attrs = schema
            .classes
            .iter()
            .map(|c| ClassAttrs {
                must: c.must.iter().filter_map(|a| schema.attr_id(a)).collect(),
                may: c.may.iter().filter_map(|a| schema.attr_id(a)).collect(),
            })
            .collect();
        Ok(schema)
    }

    fn parse_attr(&self, def: &RawDef) -> Result<AttributeType, String> {
        let (oid, names) = oid_and_names(&def.tokens)?;
        let mut attr = AttributeType {
            oid,
            names,
            sup: None,
            equality: None,
            ordering: None,
            substr: None,
            syntax: Syntax::DirectoryString,
            transfer: Transfer::Plain,
            single_value: false,
            no_user_modification: false,
            usage: Usage::UserApplications,
            allowed_values: list_after(&def.tokens, "X-ALLOWED-VALUES"),
            definition: def.text.clone(),
        };
        let mut syntax_set = false;
        let mut i = 0;
        let tokens = &def.tokens;
        while let Some(tok) = tokens.get(i) {
            let next = || match tokens.get(i + 1) {
                Some(Token::Word(w)) | Some(Token::Quoted(w)) => Ok(w.clone()),
                _ => Err(format!("{}: missing value after keyword", attr.oid)),
            };
            if let Token::Word(w) = tok {
                match w.to_ascii_uppercase().as_str() {
                    "SUP" => attr.sup = Some(next()?),
                    "EQUALITY" => attr.equality = Some(self.rule(&next()?, &attr.oid)?),
                    "ORDERING" => attr.ordering = Some(self.rule(&next()?, &attr.oid)?),
                    "SUBSTR" => attr.substr = Some(self.rule(&next()?, &attr.oid)?),
                    "SYNTAX" => {
                        let s = next()?;
                        let oid = s.split('{').next().unwrap_or("").to_string();
                        attr.syntax = Syntax::from_oid(&oid);
                        attr.transfer = Transfer::of_syntax(&oid);
                        syntax_set = true;
                    }
                    "SINGLE-VALUE" => attr.single_value = true,
                    "NO-USER-MODIFICATION" => attr.no_user_modification = true,
                    "USAGE" => {
                        attr.usage = match next()?.as_str() {
                            "userApplications" => Usage::UserApplications,
                            "directoryOperation" => Usage::DirectoryOperation,
                            "distributedOperation" => Usage::DistributedOperation,
                            "dSAOperation" => Usage::DsaOperation,
                            other => return Err(format!("{}: unknown USAGE {other}", attr.oid)),
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        if !syntax_set && attr.sup.is_none() {
            return Err(format!("{}: neither SYNTAX nor SUP", attr.oid));
        }
        // Remember whether SYNTAX was explicit so inheritance does not overwrite it.
        if !syntax_set {
            attr.syntax = Syntax::Inherit;
        }
        Ok(attr)
    }

    fn rule(&self, name: &str, owner: &str) -> Result<Rule, String> {
        self.rule_by_name
            .get(&name.to_ascii_lowercase())
            .copied()
            .ok_or_else(|| format!("{owner}: unknown matching rule {name}"))
    }

    fn resolve_inheritance(&mut self) -> Result<(), SchemaError> {
        let err = |msg: String| SchemaError::Definition {
            file: "schema".into(),
            msg,
        };
        let n = self.attrs.len();
        let mut parent: Vec<Option<AttrId>> = vec![None; n];
        for (i, a) in self.attrs.iter().enumerate() {
            if let Some(sup) = &a.sup {
                let p = self
                    .attr_by_name
                    .get(&sup.to_ascii_lowercase())
                    .copied()
                    .ok_or_else(|| err(format!("{}: unknown SUP {sup}", a.name())))?;
                if let Some(slot) = parent.get_mut(i) {
                    *slot = Some(p);
                }
            }
        }
        for i in 0..n {
            // Walk up the chain (bounded against cycles) filling in what is missing.
            let mut cur = parent.get(i).copied().flatten();
            let mut steps = 0;
            while let Some(p) = cur {
                steps += 1;
                if steps > n {
                    return Err(err("cycle in attribute type SUP chain".into()));
                }
                let sup = self.attrs.get(p).cloned();
                if let (Some(sup), Some(a)) = (sup, self.attrs.get_mut(i)) {
                    a.equality = a.equality.or(sup.equality);
                    a.ordering = a.ordering.or(sup.ordering);
                    a.substr = a.substr.or(sup.substr);
                    if a.syntax == Syntax::Inherit {
                        a.syntax = sup.syntax;
                        a.transfer = sup.transfer;
                    }
                    if a.usage == Usage::UserApplications {
                        a.usage = sup.usage;
                    }
                }
                cur = parent.get(p).copied().flatten();
            }
        }
        self.subtypes = (0..n).map(|i| vec![i]).collect();
        for i in 0..n {
            let mut cur = parent.get(i).copied().flatten();
            let mut steps = 0;
            while let Some(p) = cur {
                steps += 1;
                if steps > n {
                    break;
                }
                if let Some(list) = self.subtypes.get_mut(p) {
                    list.push(i);
                }
                cur = parent.get(p).copied().flatten();
            }
        }
        Ok(())
    }

    fn check_classes(&self) -> Result<(), SchemaError> {
        for c in &self.classes {
            for a in c.must.iter().chain(c.may.iter()) {
                if self.attr(a).is_none() {
                    return Err(SchemaError::Definition {
                        file: "schema".into(),
                        msg: format!("object class {}: unknown attribute {a}", c.names.join("/")),
                    });
                }
            }
            for s in &c.sup {
                if self.class(s).is_none() {
                    return Err(SchemaError::Definition {
                        file: "schema".into(),
                        msg: format!("object class {}: unknown SUP {s}", c.names.join("/")),
                    });
                }
            }
        }
        Ok(())
    }

    /// Replaces the site rules for values (from the configuration).
    pub fn with_value_rules(mut self, rules: ValueRules) -> Schema {
        self.values = rules;
        self
    }

    pub fn value_rules(&self) -> &ValueRules {
        &self.values
    }

    /// Looks up an attribute type by name, alias or numeric OID, ignoring case and options
    /// (`cn;lang-fr` finds `cn`).
    pub fn attr_id(&self, name: &str) -> Option<AttrId> {
        // Options (`;binary`, `;lang-fr`) end the type's name; a byte loop, as names are short.
        let base = match name.bytes().position(|b| b == b';') {
            Some(at) => name.get(..at).unwrap_or(name),
            None => name,
        };
        if !base.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.attr_by_name.get(base).copied();
        }
        // Lower-case on the stack: this runs for every attribute of every entry returned.
        let mut buf = [0u8; 64];
        match buf.get_mut(..base.len()) {
            Some(lower) => {
                lower.copy_from_slice(base.as_bytes());
                lower.make_ascii_lowercase();
                let lower = std::str::from_utf8(lower).ok()?;
                self.attr_by_name.get(lower).copied()
            }
            None => self.attr_by_name.get(&base.to_ascii_lowercase()).copied(),
        }
    }

    /// Resolves an attribute description with its options (RFC 4512 §2.5): `binary` is
    /// recognized on the types whose syntax takes it, any other option makes the description
    /// unrecognized (see [`Unrecognized`]).
    pub fn describe(&self, description: &str) -> Result<Description, Unrecognized> {
        let mut parts = description.trim().split(';');
        let base = parts.next().unwrap_or_default();
        let id = self
            .attr_id(base)
            .ok_or_else(|| Unrecognized::Type(base.to_string()))?;
        let mut binary = false;
        for option in parts {
            if !option.eq_ignore_ascii_case("binary") {
                return Err(Unrecognized::Option {
                    description: description.trim().to_string(),
                    option: option.to_string(),
                });
            }
            let takes = self
                .attrs
                .get(id)
                .is_some_and(|a| a.transfer != Transfer::Plain);
            if !takes {
                return Err(Unrecognized::Binary(description.trim().to_string()));
            }
            binary = true;
        }
        Ok(Description { id, binary })
    }

    /// The type of a description the directory recognizes (see [`Schema::describe`]).
    pub fn attr_described(&self, description: &str) -> Result<&AttributeType, Unrecognized> {
        let d = self.describe(description)?;
        self.attrs
            .get(d.id)
            .ok_or_else(|| Unrecognized::Type(description.to_string()))
    }

    /// The most specific structural class of an entry (its `structuralObjectClass`).
    pub fn structural_class<E: super::entry::AttrSource + ?Sized>(
        &self,
        entry: &E,
    ) -> Option<String> {
        entry
            .values_of("objectClass")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter(|n| {
                self.class(n)
                    .is_some_and(|c| c.kind == ClassKind::Structural)
            })
            .max_by_key(|n| self.class_chain(n).len())
            .map(str::to_string)
    }

    pub fn attr(&self, name: &str) -> Option<&AttributeType> {
        self.attr_id(name).and_then(|id| self.attrs.get(id))
    }

    pub fn attr_by_id(&self, id: AttrId) -> Option<&AttributeType> {
        self.attrs.get(id)
    }

    pub fn attribute_types(&self) -> &[AttributeType] {
        &self.attrs
    }

    /// The type and all of its subtypes (RFC 4512 §2.5.1: a filter on `name` also looks at
    /// `cn`, `sn`, `givenName`...).
    pub fn with_subtypes(&self, id: AttrId) -> &[AttrId] {
        self.subtypes.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn class(&self, name: &str) -> Option<&ObjectClass> {
        self.class_index(name).and_then(|i| self.classes.get(i))
    }

    /// The index of an object class (in [`Schema::object_classes`]) by name or OID, any case.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.class_by_name.get(name).copied();
        }
        self.class_by_name.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn class_by_index(&self, index: usize) -> Option<&ObjectClass> {
        self.classes.get(index)
    }

    /// The attribute ids a class requires and allows (not those of its superclasses).
    pub fn class_attrs(&self, index: usize) -> Option<&ClassAttrs> {
        self.class_attrs.get(index)
    }

    /// Appends to `out` the class and its superclasses (by index, in the order of
    /// [`Schema::class_chain`]) that `out` does not hold yet.
    pub fn push_class_chain(&self, index: usize, out: &mut Vec<usize>) {
        let mut todo = vec![index];
        let mut added = 0;
        while let Some(i) = todo.pop() {
            if added > 64 {
                break;
            }
            if out.contains(&i) {
                continue;
            }
            if let Some(c) = self.classes.get(i) {
                out.push(i);
                added += 1;
                todo.extend(c.sup.iter().filter_map(|s| self.class_index(s)));
            }
        }
    }

    pub fn object_classes(&self) -> &[ObjectClass] {
        &self.classes
    }

    /// A matching rule by name or OID, with what kind of assertion it makes.
    pub fn matching_rule(&self, name: &str) -> Option<(Rule, RulePurpose)> {
        let key = name.to_ascii_lowercase();
        let rule = self.rule_by_name.get(&key).copied()?;
        let purpose = self
            .rule_purpose
            .get(&key)
            .copied()
            .unwrap_or(RulePurpose::Equality);
        Some((rule, purpose))
    }

    /// Matching rule definitions, for the subschema entry.
    pub fn matching_rule_definitions(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.3.as_str())
    }

    pub fn syntax_definitions(&self) -> impl Iterator<Item = &str> {
        self.syntaxes.iter().map(String::as_str)
    }

    /// The schema's spelling of an attribute name, or the name as given when unknown.
    pub fn canonical_name<'a>(&'a self, name: &'a str) -> &'a str {
        match self.attr(name) {
            Some(a) => a.name(),
            None => name,
        }
    }

    /// Lower-case canonical name, used in normalised DNs and index keys.
    pub fn canonical_lower(&self, name: &str) -> String {
        self.canonical_name(name).to_ascii_lowercase()
    }

    /// A value in the form its equality rule compares (used for DN keys and index terms).
    pub fn normalize_value(&self, attr: &str, value: &[u8]) -> Vec<u8> {
        let rule = self
            .attr(attr)
            .and_then(|a| a.equality)
            .unwrap_or(Rule::CaseIgnore);
        rule.normalize(value, self)
    }

    /// All superclasses of a class, itself included (for `objectClass=person` on an
    /// inetOrgPerson entry, RFC 4512 §2.4.1 says clients list the whole chain; we accept
    /// entries that list only the most specific class as well).
    pub fn class_chain(&self, name: &str) -> Vec<String> {
        let mut chain = Vec::new();
        if let Some(index) = self.class_index(name) {
            self.push_class_chain(index, &mut chain);
        }
        chain
            .iter()
            .filter_map(|i| self.classes.get(*i))
            .map(|c| c.names.first().unwrap_or(&c.oid).clone())
            .collect()
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => s.push(ch),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            c if c.is_whitespace() => {}
            '$' => {}
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == '(' || n == ')' || n == '\'' || n == '$' {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Splits a schema file into definitions: a keyword followed by a balanced parenthesised body.
fn split_definitions(text: &str) -> Result<Vec<RawDef>, String> {
    let mut defs = Vec::new();
    let mut current: Option<(usize, String, String)> = None; // (line, keyword, body)
    let mut depth: i32 = 0;
    for (lineno, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if current.is_none() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let kw_len = trimmed
                .find(|c: char| c.is_whitespace() || c == '(')
                .ok_or_else(|| format!("line {}: expected a definition", lineno + 1))?;
            let kw = trimmed.get(..kw_len).unwrap_or("");
            let rest = trimmed.get(kw_len..).unwrap_or("");
            current = Some((lineno + 1, kw.to_ascii_lowercase(), rest.trim().to_string()));
        } else if let Some((_, _, body)) = current.as_mut() {
            if trimmed.starts_with('#') {
                continue;
            }
            body.push(' ');
            body.push_str(trimmed);
        }
        // Count parentheses outside quotes on what we have so far.
        if let Some((start, kw, body)) = &current {
            depth = 0;
            let mut in_quote = false;
            for ch in body.chars() {
                match ch {
                    '\'' => in_quote = !in_quote,
                    '(' if !in_quote => depth += 1,
                    ')' if !in_quote => depth -= 1,
                    _ => {}
                }
            }
            if depth == 0 && body.contains('(') {
                let tokens = tokenize(body).map_err(|e| format!("line {start}: {e}"))?;
                if tokens.first() != Some(&Token::Open) || tokens.last() != Some(&Token::Close) {
                    return Err(format!("line {start}: a definition must be in parentheses"));
                }
                defs.push(RawDef {
                    keyword: kw.clone(),
                    tokens: tokens.get(1..tokens.len() - 1).unwrap_or_default().to_vec(),
                    text: body.clone(),
                });
                current = None;
            } else if depth < 0 {
                return Err(format!("line {start}: unbalanced parentheses"));
            }
        }
    }
    if let Some((start, _, _)) = current {
        return Err(format!(
            "line {start}: definition not closed (depth {depth})"
        ));
    }
    Ok(defs)
}

fn oid_and_names(tokens: &[Token]) -> Result<(String, Vec<String>), String> {
    let oid = match tokens.first() {
        Some(Token::Word(w)) => w.clone(),
        _ => return Err("definition must start with a numeric OID".into()),
    };
    if !oid
        .split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("'{oid}' is not a numeric OID"));
    }
    let names = list_after(tokens, "NAME");
    Ok((oid, names))
}

/// The value or parenthesised list after a keyword.
fn list_after(tokens: &[Token], keyword: &str) -> Vec<String> {
    let Some(pos) = tokens
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case(keyword)))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match tokens.get(pos + 1) {
        Some(Token::Open) => {
            for t in tokens.get(pos + 2..).unwrap_or_default() {
                match t {
                    Token::Close => break,
                    Token::Word(w) | Token::Quoted(w) => out.push(w.clone()),
                    Token::Open => {}
                }
            }
        }
        Some(Token::Word(w)) | Some(Token::Quoted(w)) => out.push(w.clone()),
        _ => {}
    }
    out
}

fn parse_class(def: &RawDef) -> Result<ObjectClass, String> {
    let (oid, names) = oid_and_names(&def.tokens)?;
    let has = |k: &str| {
        def.tokens
            .iter()
            .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case(k)))
    };
    let kind = if has("ABSTRACT") {
        ClassKind::Abstract
    } else if has("AUXILIARY") {
        ClassKind::Auxiliary
    } else {
        ClassKind::Structural
    };
    Ok(ObjectClass {
        oid,
        names,
        sup: list_after(&def.tokens, "SUP"),
        kind,
        must: list_after(&def.tokens, "MUST"),
        may: list_after(&def.tokens, "MAY"),
        definition: def.text.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schema_loads_and_resolves() {
        let s = Schema::builtin().unwrap();
        let cn = s.attr("commonName").unwrap();
        assert_eq!(cn.name(), "cn");
        assert_eq!(cn.equality, Some(Rule::CaseIgnore));
        assert_eq!(cn.substr, Some(Rule::CaseIgnore));
        assert_eq!(s.attr("GIVENNAME").unwrap().name(), "givenName");
        assert_eq!(s.attr("mail").unwrap().equality, Some(Rule::CaseIgnoreIa5));
        assert_eq!(
            s.attr("telephoneNumber").unwrap().equality,
            Some(Rule::TelephoneNumber)
        );
        assert!(s.attr("createTimestamp").unwrap().usage.is_operational());
        let name = s.attr_id("name").unwrap();
        let sn = s.attr_id("sn").unwrap();
        assert!(s.with_subtypes(name).contains(&sn));
        assert_eq!(
            s.class_chain("inetOrgPerson"),
            vec!["inetOrgPerson", "organizationalPerson", "person", "top"]
        );
        assert!(s.attr("IMHandle").is_none());
    }

    /// Issue 15: inetOrgPerson allows the 48 attributes RFC 2798 and RFC 4519 give it
    /// (its own, organizationalPerson's and person's), so migrations keep every one.
    #[test]
    fn inet_org_person_allows_the_standard_attributes() {
        let s = Schema::builtin().unwrap();
        let mut may: Vec<String> = Vec::new();
        for class in s.class_chain("inetOrgPerson") {
            for a in &s.class(&class).unwrap().may {
                let name = s.attr(a).unwrap().name().to_string();
                if !may.contains(&name) {
                    may.push(name);
                }
            }
        }
        for a in [
            "userCertificate",
            "userSMIMECertificate",
            "userPKCS12",
            "homePostalAddress",
            "photo",
            "audio",
            "x500UniqueIdentifier",
            "preferredDeliveryMethod",
            "registeredAddress",
            "x121Address",
            "telexNumber",
            "teletexTerminalIdentifier",
            "internationalISDNNumber",
        ] {
            assert!(may.iter().any(|m| m == a), "{a} missing");
        }
        assert_eq!(may.len(), 48, "{may:?}");
        assert!(!s
            .attr("userCertificate")
            .unwrap()
            .syntax
            .is_human_readable());
    }

    #[test]
    fn rejects_unknown_rule_and_unbalanced() {
        let bad = vec![(
            "x".to_string(),
            "attributetype ( 1.2.3 NAME 'x' EQUALITY nopeMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )"
                .to_string(),
        )];
        assert!(Schema::from_files(&bad).is_err());
        let bad = vec![(
            "x".to_string(),
            "attributetype ( 1.2.3 NAME 'x'".to_string(),
        )];
        assert!(Schema::from_files(&bad).is_err());
    }
}
