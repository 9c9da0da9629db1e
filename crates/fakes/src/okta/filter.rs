//! Okta's `filter` (and `search`) expressions, as far as the fake serves them: terms
//! `attribute op "value"` joined by `and` / `or` (`and` binding tighter, no parentheses), with
//! `eq` on text and `eq`, `gt`, `ge`, `lt`, `le` on timestamps.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One attribute of an entity, as a filter compares it.
pub(crate) enum Field<'a> {
    Text(&'a str),
    Time(OffsetDateTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug)]
enum Operand {
    Text(String),
    Time(OffsetDateTime),
}

#[derive(Debug)]
struct Term {
    attribute: String,
    op: Op,
    operand: Operand,
}

/// Alternatives (`or`), each a list of terms that must all hold (`and`).
#[derive(Debug)]
pub(crate) struct Filter(Vec<Vec<Term>>);

struct Token {
    text: String,
    quoted: bool,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated string".into()),
                }
            }
            tokens.push(Token { text: value, quoted: true });
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && **c != '"') {
                word.push(c);
                chars.next();
            }
            tokens.push(Token { text: word, quoted: false });
        }
    }
    Ok(tokens)
}

impl Filter {
    /// `attributes` lists what may be filtered on, each with whether it is a timestamp.
    pub(crate) fn parse(text: &str, attributes: &[(&str, bool)]) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut alternatives = vec![Vec::new()];
        let mut rest = tokens.as_slice();
        loop {
            let [attribute, op, value, tail @ ..] = rest else {
                return Err(format!("expected `attribute op value` in {text:?}"));
            };
            let Some(&(_, is_time)) =
                attributes.iter().find(|(a, _)| !attribute.quoted && *a == attribute.text)
            else {
                return Err(format!("cannot filter on {:?}", attribute.text));
            };
            let op = match op.text.to_ascii_lowercase().as_str() {
                "eq" => Op::Eq,
                "gt" => Op::Gt,
                "ge" => Op::Ge,
                "lt" => Op::Lt,
                "le" => Op::Le,
                other => return Err(format!("unsupported operator {other:?}")),
            };
            let operand = if is_time {
                let time = OffsetDateTime::parse(&value.text, &Rfc3339)
                    .map_err(|_| format!("{:?} is not a timestamp", value.text))?;
                Operand::Time(time)
            } else if op == Op::Eq {
                Operand::Text(value.text.clone())
            } else {
                return Err(format!("{} only supports eq", attribute.text));
            };
            let term = Term { attribute: attribute.text.clone(), op, operand };
            alternatives.last_mut().expect("never empty").push(term);
            match tail {
                [] => break,
                [joiner, more @ ..] if !joiner.quoted => {
                    match joiner.text.to_ascii_lowercase().as_str() {
                        "and" => {}
                        "or" => alternatives.push(Vec::new()),
                        other => return Err(format!("expected and/or, got {other:?}")),
                    }
                    rest = more;
                }
                [other, ..] => return Err(format!("expected and/or, got {:?}", other.text)),
            }
        }
        Ok(Filter(alternatives))
    }

    /// Whether an entity whose attributes `field` reads passes the filter.
    pub(crate) fn matches<'a>(&self, field: impl Fn(&str) -> Option<Field<'a>>) -> bool {
        self.0.iter().any(|all| {
            all.iter().all(|term| match (field(&term.attribute), &term.operand) {
                (Some(Field::Text(value)), Operand::Text(wanted)) => value == wanted,
                (Some(Field::Time(value)), Operand::Time(bound)) => match term.op {
                    Op::Eq => value == *bound,
                    Op::Gt => value > *bound,
                    Op::Ge => value >= *bound,
                    Op::Lt => value < *bound,
                    Op::Le => value <= *bound,
                },
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const USER: &[(&str, bool)] = &[("status", false), ("lastUpdated", true)];

    fn user(status: &'static str, updated: OffsetDateTime) -> impl Fn(&str) -> Option<Field<'static>> {
        move |attribute| match attribute {
            "status" => Some(Field::Text(status)),
            "lastUpdated" => Some(Field::Time(updated)),
            _ => None,
        }
    }

    #[test]
    fn terms_combine_with_and_before_or() {
        let f = Filter::parse(
            r#"status eq "ACTIVE" and lastUpdated gt "2024-01-01T00:00:00.000Z" or status eq "DEPROVISIONED""#,
            USER,
        )
        .unwrap();
        assert!(f.matches(user("ACTIVE", datetime!(2024-02-01 0:00 UTC))));
        assert!(!f.matches(user("ACTIVE", datetime!(2023-02-01 0:00 UTC))));
        assert!(f.matches(user("DEPROVISIONED", datetime!(2023-02-01 0:00 UTC))));
        assert!(!f.matches(user("SUSPENDED", datetime!(2024-02-01 0:00 UTC))));
    }

    #[test]
    fn unsupported_filters_are_refused() {
        for bad in [
            r#"status gt "ACTIVE""#,
            r#"profile.city eq "Paris""#,
            r#"lastUpdated gt "yesterday""#,
            r#"status eq "ACTIVE" xor status eq "STAGED""#,
            r#"status eq"#,
            r#"status eq "ACTIVE"#,
        ] {
            assert!(Filter::parse(bad, USER).is_err(), "{bad}");
        }
    }
}
