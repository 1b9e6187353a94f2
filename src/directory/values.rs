//! Value checks that keep the directory from misleading a reader: text without control or
//! direction-changing characters, the printable-string and telephone-number syntaxes of
//! RFC 4517, mail addresses as RFC 5321/5322 addr-specs (domains as IDNA A-labels or
//! U-labels), domain names, and ONE ID usernames. Each check returns what is wrong, in words
//! an administrator can act on, or `None`.

/// Public webmail and free-mail domains (`data/webmail-domains.txt`): never secure unless
/// forced with a reason.
const WEBMAIL_DOMAINS: &str = include_str!("../../data/webmail-domains.txt");

/// The listed public webmail domain that `domain` is or belongs to, if any.
pub fn public_webmail(domain: &str) -> Option<&'static str> {
    let domain = domain_ascii(domain.trim().trim_end_matches('.')).ok()?;
    WEBMAIL_DOMAINS
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .find(|listed| {
            domain == *listed
                || domain
                    .strip_suffix(listed)
                    .is_some_and(|head| head.ends_with('.'))
        })
}

/// Whether an `onePagesStatus` value leaves the account active. Anything but `active` (data
/// written before the values were checked may hold `disabled `, `inactive`...) counts as not
/// active: the directory fails closed.
pub fn status_is_active(value: &[u8]) -> bool {
    value.trim_ascii().eq_ignore_ascii_case(b"active")
}

/// Characters refused in text: they make one name look like another or break the line a
/// client shows (RFC 4517 §3.3.6 leaves them to the server; a directory people pick
/// recipients from refuses them).
pub fn text_problem(text: &str) -> Option<String> {
    for c in text.chars() {
        let why = match c {
            '\r' | '\n' => "a line break",
            '\u{1b}' => "an escape character",
            '\0' => "a NUL character",
            c if c.is_control() => "a control character",
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => "a Unicode bidirectional override",
            '\u{2028}' | '\u{2029}' => "a Unicode line separator",
            '\u{200b}' | '\u{feff}' => "an invisible character",
            _ => continue,
        };
        return Some(format!("{why} (U+{:04X}) is not allowed", c as u32));
    }
    None
}

/// RFC 4517 §3.3.29 PrintableCharacter.
fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// RFC 4517 §3.3.29: one or more printable characters.
pub fn printable_problem(text: &str) -> Option<String> {
    match text.chars().find(|c| !is_printable(*c)) {
        Some(c) => Some(format!(
            "'{c}' is not a printable-string character (letters, digits, space and '()+,-./:=?)"
        )),
        None if text.is_empty() => Some("empty value".into()),
        None => None,
    }
}

/// RFC 4517 §3.3.4: an ISO 3166 two-letter code.
pub fn country_problem(text: &str) -> Option<String> {
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        None
    } else {
        Some("a country is a two-letter ISO 3166 code, such as CA".into())
    }
}

/// RFC 4517 §3.3.31: a printable string, in the E.123 form it recommends: an optional `+`,
/// then digits grouped by spaces, `-`, `.`, `/` or parentheses, then an optional extension
/// (`x 123`, `ext. 123`, `poste 123`).
pub fn telephone_problem(text: &str) -> Option<String> {
    if let Some(p) = printable_problem(text) {
        return Some(p);
    }
    let lower = text.to_ascii_lowercase();
    let (number, extension) = split_extension(&lower);
    if let Some(ext) = extension {
        if ext.is_empty() || ext.len() > 8 || !ext.bytes().all(|b| b.is_ascii_digit()) {
            return Some("an extension is digits after 'x', 'ext.' or 'poste'".into());
        }
    }
    let number = number.trim();
    let body = number.strip_prefix('+').unwrap_or(number);
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_digit() || " -./()".contains(*c)))
    {
        return Some(format!(
            "'{c}' does not belong in a telephone number (digits, an optional leading +, \
             spaces, '-', '.', '/' and parentheses)"
        ));
    }
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    if !(3..=20).contains(&digits) {
        return Some(format!(
            "a telephone number has 3 to 20 digits, not {digits}"
        ));
    }
    if !balanced(body) {
        return Some("unbalanced parentheses".into());
    }
    None
}

fn split_extension(lower: &str) -> (&str, Option<&str>) {
    for marker in ["extension", "ext.", "ext", "poste", "x"] {
        if let Some(pos) = lower.rfind(marker) {
            let ext = lower.get(pos + marker.len()..).unwrap_or("").trim();
            let ext = ext.strip_prefix('.').unwrap_or(ext).trim();
            return (lower.get(..pos).unwrap_or(""), Some(ext));
        }
    }
    (lower, None)
}

fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return false;
        }
    }
    depth == 0
}

/// RFC 5322 §3.2.3 atext.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// A mail address as RFC 5321 §4.1.2 `Mailbox` (the RFC 5322 addr-spec without comments or
/// folding): a dot-atom or quoted local part of at most 64 octets, `@`, and a fully
/// qualified domain name (A-labels or U-labels); 254 octets at most.
pub fn mail_problem(address: &str) -> Option<String> {
    let bad = |why: String| Some(format!("'{address}' is not a mail address: {why}"));
    if address.trim() != address {
        return bad("it has spaces around it".into());
    }
    if address.len() > 254 {
        return bad("it is longer than 254 octets".into());
    }
    let Some(at) = address.rfind('@') else {
        return bad("it has no '@'".into());
    };
    let (local, domain) = (
        address.get(..at).unwrap_or(""),
        address.get(at + 1..).unwrap_or(""),
    );
    if let Some(why) = local_part_problem(local) {
        return bad(why);
    }
    if domain.starts_with('[') {
        return bad("an address literal is not accepted here; use the domain name".into());
    }
    match domain_problem(domain) {
        Some(why) => bad(why),
        None => None,
    }
}

fn local_part_problem(local: &str) -> Option<String> {
    if local.is_empty() {
        return Some("the part before '@' is empty".into());
    }
    if local.len() > 64 {
        return Some("the part before '@' is longer than 64 octets".into());
    }
    if let Some(inner) = local.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Some("a quoted part before '@' must end with '\"'".into());
        };
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(q) if (' '..='~').contains(&q) => {}
                    _ => return Some("a '\\' in quotes must escape a printable character".into()),
                },
                '"' => return Some("a '\"' in quotes must be escaped".into()),
                c if (' '..='~').contains(&c) => {}
                c => {
                    return Some(format!(
                        "'{}' (U+{:04X}) is not allowed before '@'",
                        c.escape_default(),
                        c as u32
                    ))
                }
            }
        }
        return None;
    }
    if local.contains('@') {
        return Some("it has more than one '@'".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Some(format!(
            "the part before '@' ('{local}') may not start or end with a dot or have two in a row"
        ));
    }
    if let Some(c) = local.chars().find(|c| *c != '.' && !is_atext(*c)) {
        return Some(format!(
            "'{}' is not allowed before '@' without quotes",
            c.escape_default()
        ));
    }
    None
}

/// A fully qualified domain name: labels of letters, digits and hyphens (after IDNA
/// conversion of U-labels), at least two of them.
pub fn domain_problem(domain: &str) -> Option<String> {
    if domain.is_empty() {
        return Some("the domain is empty".into());
    }
    let ascii = match domain_ascii(domain) {
        Ok(a) => a,
        Err(why) => return Some(why),
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Some(format!("'{domain}' is not a fully qualified domain name"));
    }
    for label in &labels {
        if label.is_empty() {
            return Some(format!("'{domain}' has an empty label"));
        }
        if label.len() > 63 {
            return Some(format!("a label of '{domain}' is longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("a label of '{domain}' starts or ends with '-'"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some(format!(
                "'{domain}' has a character that is not a letter, digit or '-'"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "'{domain}' ends in a number, not a top-level domain"
        ));
    }
    if ascii.len() > 253 {
        return Some(format!("'{domain}' is longer than 253 octets"));
    }
    None
}

/// The ASCII (A-label) form of a domain name, lower case; U-labels are converted by IDNA
/// (UTS #46, strict), A-labels checked to decode.
pub fn domain_ascii(domain: &str) -> Result<String, String> {
    if domain.is_ascii() && !domain.contains("xn--") && !domain.contains("XN--") {
        return Ok(domain.to_ascii_lowercase());
    }
    idna::domain_to_ascii_strict(domain)
        .map_err(|_| format!("'{domain}' is not a valid internationalised domain name"))
}

/// A mail address with its domain in A-label form, for comparison: `None` when the part
/// before `@` is not ASCII (an IA5 string cannot hold it) or the domain does not convert.
pub fn ascii_mail_form(address: &str) -> Option<String> {
    match address.rfind('@') {
        Some(at) => {
            let local = address.get(..at)?;
            if !local.is_ascii() {
                return None;
            }
            let domain = domain_ascii(address.get(at + 1..)?).ok()?;
            Some(format!("{local}@{domain}"))
        }
        None => domain_ascii(address).ok(),
    }
}

/// A ONE ID username: `local@` the configured domain, the local part of ASCII letters,
/// digits, `.`, `-`, `_` and `'` (as `firstname.lastname`, with digits when names repeat).
pub fn oneid_problem(uid: &str, oneid_domain: &str) -> Option<String> {
    let bad = |why: String| {
        Some(format!(
            "'{uid}' is not a ONE ID username (firstname.lastname@{oneid_domain}): {why}"
        ))
    };
    let Some((local, domain)) = uid.rsplit_once('@') else {
        return bad("it has no '@'".into());
    };
    if !domain.eq_ignore_ascii_case(oneid_domain) {
        return bad(format!("the domain must be {oneid_domain}"));
    }
    if local.is_empty() || local.len() > 64 {
        return bad("the name before '@' must have 1 to 64 characters".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return bad("dots go between parts of the name".into());
    }
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_'".contains(*c)))
    {
        return bad(format!("'{}' is not allowed", c.escape_default()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_controls_and_overrides() {
        assert!(text_problem("Dewey Rahim").is_none());
        assert!(text_problem("Hôpital Montfort — Urgence").is_none());
        assert!(text_problem("عيادة").is_none());
        for bad in [
            "a\0b",
            "line\r\nbreak",
            "esc\u{1b}[31m",
            "evil\u{202e}gpj.exe",
            "iso\u{2066}late",
            "tab\there",
            "c1\u{85}",
            "zero\u{200b}width",
        ] {
            assert!(text_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn telephone_numbers() {
        for good in [
            "+1 416 555 0100",
            "(416) 555-0100",
            "416.555.0100",
            "+1 705 555 0170 x 204",
            "+1 613 555 0100 ext. 12",
            "613 555 0100 poste 3",
            "+44 20/7946 0000",
        ] {
            assert!(telephone_problem(good).is_none(), "{good}");
        }
        for bad in [
            "not a phone",
            "12",
            "+1 416 555 0100 #2",
            "416 555 01OO",
            "(416 555 0100",
            "+1 416 555 0100 x",
            "1 + 2",
        ] {
            assert!(telephone_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn printable_and_country() {
        assert!(printable_problem("Ottawa (ON) 1/2").is_none());
        assert!(printable_problem("Montréal").is_some());
        assert!(printable_problem("a_b").is_some());
        assert!(country_problem("CA").is_none());
        assert!(country_problem("Canada").is_some());
    }

    #[test]
    fn mail_addresses() {
        for good in [
            "dewey.rahim@one-mail.on.ca",
            "o'brien+lab@hopital.example",
            "\"dr smith\"@clinic.example",
            "x@bücher.example",
            "x@xn--bcher-kva.example",
            "a@b.co",
        ] {
            assert!(
                mail_problem(good).is_none(),
                "{good}: {:?}",
                mail_problem(good)
            );
        }
        for bad in [
            "amir.haddad@@one-mail",
            "amir.haddad@one-mail",
            "amir haddad@one-mail.on.ca",
            "@one-mail.on.ca",
            "a.@one-mail.on.ca",
            "a..b@one-mail.on.ca",
            "a@[10.0.0.1]",
            "a@-bad.example",
            "a@exa_mple.com",
            "a@xn--zz.example",
            " a@b.example",
            "a@b.123",
            "plain",
            "é@b.example",
        ] {
            assert!(mail_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn mail_forms_compare_in_ascii() {
        assert_eq!(
            ascii_mail_form("X@Bücher.Example").as_deref(),
            Some("X@xn--bcher-kva.example")
        );
        assert_eq!(ascii_mail_form("é@b.example"), None);
    }

    #[test]
    fn webmail_domains_and_their_subdomains() {
        assert_eq!(public_webmail("gmail.com"), Some("gmail.com"));
        assert_eq!(public_webmail("GMail.com."), Some("gmail.com"));
        assert_eq!(public_webmail("eu.proton.me"), Some("proton.me"));
        assert_eq!(public_webmail("notgmail.com"), None);
        assert_eq!(public_webmail("one-mail.on.ca"), None);
        assert!(status_is_active(b"Active "));
        assert!(!status_is_active(b"disabled "));
        assert!(!status_is_active(b"suspended"));
    }

    #[test]
    fn one_id_usernames() {
        let d = "oneid.on.ca";
        assert!(oneid_problem("dewey.rahim@oneid.on.ca", d).is_none());
        assert!(oneid_problem("Dewey.Rahim2@ONEID.on.ca", d).is_none());
        assert!(oneid_problem("dewey.rahim@one-mail.on.ca", d).is_some());
        assert!(oneid_problem("dewey rahim@oneid.on.ca", d).is_some());
        assert!(oneid_problem("dewey", d).is_some());
        assert!(oneid_problem(".dewey@oneid.on.ca", d).is_some());
        assert!(oneid_problem("dewey@health.example", "health.example").is_none());
    }
}
