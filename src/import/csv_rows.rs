//! CSV rows as directory entries.
//!
//! The header names attributes (`givenName,sn,o,department,mail,uid,...`, any case), or
//! spells them as HR exports do (`First Name`, `Last Name`, `E-mail`, see [`COMMON`]), or as
//! `--map "Header=attribute"` says. A `dn` column gives the DN; without one the DN is
//! `uid=<uid>,ou=people,<suffix>`. Several values in one cell are separated by `|`; a cell of PEM
//! text (`-----BEGIN CERTIFICATE-----`, a certificate column) is one value per block. Missing
//! `objectClass` means a ONE Pages person (inetOrgPerson + onePagesPerson); missing `cn` is
//! "givenName sn", missing `displayName` is the `cn`. Empty cells are no value. The file must
//! be UTF-8 (a byte-order mark is allowed); the separator is `,`, `;` or a tab, whichever the
//! header line uses.

use std::io::Read;

use super::Item;
use crate::directory::certificate;
use crate::directory::dn::{escape_into, Dn};

pub const DEFAULT_CLASSES: &[&str] = &[
    "top",
    "person",
    "organizationalPerson",
    "inetOrgPerson",
    "onePagesPerson",
];

/// Header spellings of HR and identity exports, compared without case, spaces, `-`, `_` and
/// `.`, and the attributes they mean.
pub const COMMON: &[(&str, &str)] = &[
    ("firstname", "givenName"),
    ("givenname", "givenName"),
    ("prenom", "givenName"),
    ("prénom", "givenName"),
    ("lastname", "sn"),
    ("surname", "sn"),
    ("familyname", "sn"),
    ("nom", "sn"),
    ("fullname", "cn"),
    ("name", "cn"),
    ("displayname", "displayName"),
    ("email", "mail"),
    ("emailaddress", "mail"),
    ("mailaddress", "mail"),
    ("courriel", "mail"),
    ("oneid", "uid"),
    ("oneidusername", "uid"),
    ("username", "uid"),
    ("userid", "uid"),
    ("organization", "o"),
    ("organisation", "o"),
    ("company", "company"),
    ("companyname", "company"),
    ("department", "department"),
    ("dept", "department"),
    ("jobtitle", "title"),
    ("position", "title"),
    ("phone", "telephoneNumber"),
    ("telephone", "telephoneNumber"),
    ("workphone", "telephoneNumber"),
    ("businessphone", "telephoneNumber"),
    ("phonenumber", "telephoneNumber"),
    ("mobile", "mobile"),
    ("mobilephone", "mobile"),
    ("cellphone", "mobile"),
    ("cell", "mobile"),
    ("fax", "facsimileTelephoneNumber"),
    ("city", "l"),
    ("province", "st"),
    ("postalcode", "postalCode"),
    ("zip", "postalCode"),
    ("streetaddress", "street"),
];

fn folded(header: &str) -> String {
    header
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The attribute a header names: `--map` first, then the common spellings, else itself.
pub fn attribute_of(header: &str, map: &[(String, String)]) -> String {
    let h = header.trim();
    if let Some((_, a)) = map
        .iter()
        .find(|(from, _)| from.trim().eq_ignore_ascii_case(h))
    {
        return a.trim().to_string();
    }
    let f = folded(h);
    COMMON
        .iter()
        .find(|(k, _)| *k == f)
        .map_or_else(|| h.to_string(), |(_, a)| (*a).to_string())
}

/// The file as UTF-8 text (without a byte-order mark), or why not, once.
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err("the file is UTF-16; save it as UTF-8 (in Excel: \"CSV UTF-8\")".into());
    }
    let bytes = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes.iter().take(at).filter(|b| **b == b'\n').count() + 1;
        let byte = bytes.get(at).copied().unwrap_or(0);
        format!(
            "the file is not UTF-8 (byte 0x{byte:02X} at line {line}): it looks like \
             Windows-1252 or ISO-8859-1; save it as UTF-8 (in Excel: \"CSV UTF-8\")"
        )
    })
}

/// The separator the header line uses most, outside quotes: `,`, `;` or a tab.
fn separator(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let [comma, semicolon, tab] = counts;
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

/// The header's attributes and the rows as records.
pub struct Rows {
    pub attributes: Vec<String>,
    pub items: Vec<Item>,
}

pub fn items<R: Read>(
    mut reader: R,
    suffix: &str,
    map: &[(String, String)],
) -> Result<Rows, String> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading: {e}"))?;
    let text = utf8(&bytes)?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(separator(text))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("reading the header row: {e}"))?
        .iter()
        .map(|h| attribute_of(h, map))
        .collect();
    if headers.iter().any(String::is_empty) {
        return Err("the header row has an empty column name".into());
    }
    if headers
        .iter()
        .all(|h| !h.eq_ignore_ascii_case("dn") && !h.eq_ignore_ascii_case("uid"))
    {
        return Err("the header needs a 'dn' or a 'uid' column".into());
    }
    let people = Dn::parse(&format!("ou=people,{suffix}")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rdr.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                out.push(Item::Bad {
                    line,
                    message: format!("unreadable CSV row: {e}"),
                });
                continue;
            }
        };
        let line = row
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        if row.len() != headers.len() {
            out.push(Item::Bad {
                line,
                message: format!(
                    "row has {} fields but the header has {}",
                    row.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let mut dn = None;
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut broken = None;
        for (h, cell) in headers.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            if h.eq_ignore_ascii_case("dn") {
                dn = Some(cell.to_string());
                continue;
            }
            // A certificate column holds PEM text: one value per block.
            if certificate::looks_like_pem(cell) {
                match certificate::from_pem(cell) {
                    Ok(values) => attrs.push((h.clone(), values)),
                    Err(why) => broken = Some(format!("column {h}: {why}")),
                }
                continue;
            }
            let values: Vec<Vec<u8>> = cell
                .split('|')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.as_bytes().to_vec())
                .collect();
            attrs.push((h.clone(), values));
        }
        if let Some(message) = broken {
            out.push(Item::Bad { line, message });
            continue;
        }
        let get = |name: &str, attrs: &[(String, Vec<Vec<u8>>)]| {
            attrs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first())
                .map(|v| String::from_utf8_lossy(v).to_string())
        };
        let dn = match dn {
            Some(d) => d,
            None => match get("uid", &attrs) {
                Some(uid) => {
                    let mut rdn = String::from("uid=");
                    escape_into(&mut rdn, &uid);
                    format!("{rdn},{people}")
                }
                None => {
                    out.push(Item::Bad {
                        line,
                        message: "row has neither a dn nor a uid".into(),
                    });
                    continue;
                }
            },
        };
        if get("objectClass", &attrs).is_none() {
            attrs.push((
                "objectClass".into(),
                DEFAULT_CLASSES
                    .iter()
                    .map(|c| c.as_bytes().to_vec())
                    .collect(),
            ));
        }
        if get("cn", &attrs).is_none() {
            let full = [get("givenName", &attrs), get("sn", &attrs)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if !full.is_empty() {
                attrs.push(("cn".into(), vec![full.into_bytes()]));
            }
        }
        if get("displayName", &attrs).is_none() {
            if let Some(cn) = get("cn", &attrs) {
                attrs.push(("displayName".into(), vec![cn.into_bytes()]));
            }
        }
        out.push(Item::Content { line, dn, attrs });
    }
    Ok(Rows {
        attributes: headers,
        items: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_entries() {
        let text = "uid,givenName,sn,mail,department\n\
                    dewey.rahim@oneid.on.ca,Dewey,Rahim,dewey.rahim@one-mail.on.ca,\n\
                    bad,row\n";
        let items = items(text.as_bytes(), "dc=x", &[]).unwrap().items;
        assert_eq!(items.len(), 2);
        match &items[0] {
            Item::Content { line, dn, attrs } => {
                assert_eq!(*line, 2);
                assert_eq!(dn, "uid=dewey.rahim@oneid.on.ca,ou=people,dc=x");
                assert!(attrs
                    .iter()
                    .any(|(n, v)| n == "cn" && v[0] == b"Dewey Rahim"));
                assert!(!attrs.iter().any(|(n, _)| n == "department"));
            }
            _ => panic!("expected content"),
        }
        assert!(matches!(items[1], Item::Bad { line: 3, .. }));
    }

    #[test]
    fn hr_exports_are_read_as_they_come() {
        // Excel in a French locale: a byte-order mark, `;` between cells, HR spellings.
        let text = "\u{feff}First Name;Last Name;E-mail;ONE ID;Service\n\
                    Hélène;Côté;helene@one-mail.on.ca;helene@oneid.on.ca;Soins\n";
        let map = vec![("Service".to_string(), "department".to_string())];
        let rows = items(text.as_bytes(), "dc=x", &map).unwrap();
        assert_eq!(
            rows.attributes,
            ["givenName", "sn", "mail", "uid", "department"]
        );
        match &rows.items[0] {
            Item::Content { dn, attrs, .. } => {
                assert_eq!(dn, "uid=helene@oneid.on.ca,ou=people,dc=x");
                assert!(attrs
                    .iter()
                    .any(|(n, v)| n == "cn" && v[0] == "Hélène Côté".as_bytes()));
            }
            _ => panic!("expected content"),
        }
        // Latin-1: refused once, with the line and what to do.
        let latin1 = b"givenName,sn,uid\nH\xe9l\xe8ne,C,h@oneid.on.ca\n";
        let err = items(latin1.as_slice(), "dc=x", &[]).err().unwrap();
        assert!(err.contains("not UTF-8") && err.contains("line 2"), "{err}");
        let utf16 = [0xff, 0xfe, b'u', 0];
        assert!(items(utf16.as_slice(), "dc=x", &[])
            .err()
            .unwrap()
            .contains("UTF-16"));
    }
}
