//! CSV rows as directory entries.
//!
//! The header names attributes (`givenName,sn,o,department,mail,uid,...`, any case). A `dn`
//! column gives the DN; without one the DN is `uid=<uid>,ou=people,<suffix>`. Several values in
//! one cell are separated by `|`. Missing `objectClass` means a ONE Pages person
//! (inetOrgPerson + onePagesPerson); missing `cn` is "givenName sn", missing `displayName` is
//! the `cn`. Empty cells are no value.

use std::io::Read;

use super::Item;
use crate::directory::dn::{escape_into, Dn};

pub const DEFAULT_CLASSES: &[&str] = &[
    "top",
    "person",
    "organizationalPerson",
    "inetOrgPerson",
    "onePagesPerson",
];

pub fn items<R: Read>(reader: R, suffix: &str) -> Result<Vec<Item>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("reading the header row: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
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
        for (h, cell) in headers.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            if h.eq_ignore_ascii_case("dn") {
                dn = Some(cell.to_string());
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_entries() {
        let text = "uid,givenName,sn,mail,department\n\
                    dewey.rahim@oneid.on.ca,Dewey,Rahim,dewey.rahim@one-mail.on.ca,\n\
                    bad,row\n";
        let items = items(text.as_bytes(), "dc=x").unwrap();
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
}
