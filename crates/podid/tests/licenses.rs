//! Every dependency's licence satisfies the allow-list in `deny.toml` (SPDX expressions: OR, AND, WITH,
//! parentheses, and the legacy `/` for OR).

use std::process::Command;

fn allow_list() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deny.toml"))
        .expect("read deny.toml");
    let start = text.find("allow = [").expect("allow list in deny.toml");
    let body = &text[start..];
    let end = body.find(']').expect("end of allow list");
    body[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[derive(Debug, PartialEq)]
enum Tok {
    Id(String),
    And,
    Or,
    With,
    Open,
    Close,
}

fn tokens(expr: &str) -> Vec<Tok> {
    let spaced = expr
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    spaced
        .split_whitespace()
        .map(|t| match t {
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "WITH" => Tok::With,
            "(" => Tok::Open,
            ")" => Tok::Close,
            id => Tok::Id(id.to_string()),
        })
        .collect()
}

/// or := and ("OR" and)*; and := atom ("AND" atom)*; atom := "(" or ")" | id ["WITH" id]
fn eval(toks: &[Tok], pos: &mut usize, allowed: &[String]) -> Result<bool, String> {
    let mut any = and(toks, pos, allowed)?;
    while toks.get(*pos) == Some(&Tok::Or) {
        *pos += 1;
        any |= and(toks, pos, allowed)?;
    }
    Ok(any)
}

fn and(toks: &[Tok], pos: &mut usize, allowed: &[String]) -> Result<bool, String> {
    let mut all = atom(toks, pos, allowed)?;
    while toks.get(*pos) == Some(&Tok::And) {
        *pos += 1;
        all &= atom(toks, pos, allowed)?;
    }
    Ok(all)
}

fn atom(toks: &[Tok], pos: &mut usize, allowed: &[String]) -> Result<bool, String> {
    match toks.get(*pos) {
        Some(Tok::Open) => {
            *pos += 1;
            let v = eval(toks, pos, allowed)?;
            if toks.get(*pos) != Some(&Tok::Close) {
                return Err("missing )".into());
            }
            *pos += 1;
            Ok(v)
        }
        Some(Tok::Id(id)) => {
            *pos += 1;
            let mut name = id.clone();
            if toks.get(*pos) == Some(&Tok::With) {
                *pos += 1;
                match toks.get(*pos) {
                    Some(Tok::Id(exc)) => {
                        *pos += 1;
                        name = format!("{name} WITH {exc}");
                    }
                    _ => return Err("WITH needs an exception".into()),
                }
            }
            Ok(allowed.contains(&name))
        }
        other => Err(format!("unexpected {other:?}")),
    }
}

fn satisfied(expr: &str, allowed: &[String]) -> Result<bool, String> {
    let toks = tokens(expr);
    let mut pos = 0;
    let v = eval(&toks, &mut pos, allowed)?;
    if pos != toks.len() {
        return Err(format!("trailing tokens in {expr:?}"));
    }
    Ok(v)
}

#[test]
fn spdx_evaluation() {
    let allowed = vec!["MIT".to_string(), "Apache-2.0".to_string()];
    assert_eq!(satisfied("MIT OR GPL-3.0", &allowed), Ok(true));
    assert_eq!(satisfied("MIT AND GPL-3.0", &allowed), Ok(false));
    assert_eq!(
        satisfied("(MIT OR Apache-2.0) AND GPL-3.0", &allowed),
        Ok(false)
    );
    assert_eq!(satisfied("MIT/Apache-2.0", &allowed), Ok(true));
    assert_eq!(satisfied("GPL-3.0-or-later", &allowed), Ok(false));
    assert_eq!(
        satisfied("Apache-2.0 WITH LLVM-exception", &allowed),
        Ok(false)
    );
    assert!(satisfied("(MIT", &allowed).is_err());
}

#[test]
fn every_dependency_licence_is_allowed() {
    let allowed = allow_list();
    assert!(allowed.contains(&"MIT".to_string()));
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut bad = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or("?");
        let version = p["version"].as_str().unwrap_or("?");
        match p["license"].as_str() {
            None => bad.push(format!("{name} {version}: no licence expression")),
            Some(expr) => match satisfied(expr, &allowed) {
                Ok(true) => {}
                Ok(false) => bad.push(format!("{name} {version}: {expr}")),
                Err(e) => bad.push(format!("{name} {version}: cannot parse {expr:?}: {e}")),
            },
        }
    }
    assert!(
        bad.is_empty(),
        "licences outside deny.toml's allow-list:\n{}",
        bad.join("\n")
    );
}
