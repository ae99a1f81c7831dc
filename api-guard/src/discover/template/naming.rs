//! Template text and parameter names. A parameter is named after the static segment before
//! it, singularised: `/users/{userId}` for an identifier, `/files/{file}` for a position made
//! a parameter by its cardinality. Without a usable word before it, or when the name is
//! already taken in the template, it is `{id}`, then `{id2}`, `{id3}`...

use std::borrow::Cow;

use super::{Param, Template};

/// One segment of a template being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seg<'a> {
    /// Kept as written.
    Lit(&'a str),
    /// A parameter because its values are identifiers: named `{<word>Id}`.
    Id,
    /// A parameter because its position has too many distinct values: named `{<word>}`.
    Name,
    /// A parameter with a given name (known templates).
    Named(&'a str),
}

/// The template for `segs`; `star` appends the overflow catch-all `/*`.
pub(super) fn render(segs: &[Seg<'_>], star: bool) -> Template {
    let mut text = String::new();
    let mut params: Vec<Param> = Vec::new();
    let mut prev = None;
    for (i, seg) in segs.iter().enumerate() {
        text.push('/');
        let name = match *seg {
            Seg::Lit(lit) => {
                text.push_str(lit);
                prev = Some(lit);
                continue;
            }
            Seg::Named(name) => name.to_owned(),
            Seg::Id | Seg::Name => pick_name(prev, *seg == Seg::Id, &params),
        };
        prev = None;
        text.push('{');
        text.push_str(&name);
        text.push('}');
        params.push(Param {
            segment: i,
            name: name.into(),
        });
    }
    if star {
        text.push_str("/*");
    }
    if text.is_empty() {
        text.push('/');
    }
    Template {
        text: text.into(),
        params: params.into(),
    }
}

fn pick_name(prev: Option<&str>, id: bool, taken: &[Param]) -> String {
    let free = |name: &str| !taken.iter().any(|p| &*p.name == name);
    if let Some(mut name) = prev.and_then(word_name) {
        if id && name != "id" {
            name.push_str("Id");
        }
        if free(&name) {
            return name;
        }
    }
    (1..)
        .map(|k| {
            if k == 1 {
                "id".to_owned()
            } else {
                format!("id{k}")
            }
        })
        .find(|name| free(name))
        .unwrap_or_default()
}

/// `order-items` → `orderItem`; `None` unless the segment is a word: 2 to 40 ASCII letters,
/// optionally joined by `-` or `_`.
fn word_name(seg: &str) -> Option<String> {
    let ok = (2..=40).contains(&seg.len())
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
        && seg.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if !ok {
        return None;
    }
    let words: Vec<&str> = seg.split(['-', '_']).filter(|w| !w.is_empty()).collect();
    let last = words.len().checked_sub(1)?;
    let mut out = String::with_capacity(seg.len() + 2);
    for (i, word) in words.iter().enumerate() {
        let word = if i == last {
            singular(word)
        } else {
            Cow::Borrowed(*word)
        };
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push(first.to_ascii_lowercase());
            } else {
                out.push(first.to_ascii_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    Some(out)
}

/// English singular of simple plurals, by suffix (ASCII case-insensitive; the result keeps
/// the word's own case): `users` → `user`, `categories` → `category`, `addresses` →
/// `address`, `boxes` → `box`, `branches` → `branch`; `status`, `analysis` stay.
pub(super) fn singular(word: &str) -> Cow<'_, str> {
    const SAME: &[&str] = &[
        "series", "species", "news", "data", "media", "metadata", "alias",
    ];
    const IRREGULAR: &[(&str, &str)] = &[
        ("people", "person"),
        ("children", "child"),
        ("men", "man"),
        ("women", "woman"),
        ("statuses", "status"),
        ("viruses", "virus"),
        ("aliases", "alias"),
        ("caches", "cache"),
        ("movies", "movie"),
        ("cookies", "cookie"),
    ];
    let lower = word.to_ascii_lowercase();
    if SAME.contains(&lower.as_str()) {
        return Cow::Borrowed(word);
    }
    if let Some((_, one)) = IRREGULAR.iter().find(|(many, _)| *many == lower) {
        return Cow::Borrowed(one);
    }
    // The suffixes tested are ASCII, so these cuts fall on char boundaries.
    let strip = |n: usize| Cow::Borrowed(word.get(..word.len() - n).unwrap_or(word));
    if lower.ends_with("ies") && lower.len() > 4 {
        Cow::Owned(format!("{}y", word.get(..word.len() - 3).unwrap_or(word)))
    } else if ["sses", "shes", "ches", "xes", "zzes"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        strip(2)
    } else if ["ss", "us", "is"].iter().any(|s| lower.ends_with(s)) || lower.len() < 3 {
        Cow::Borrowed(word)
    } else if lower.ends_with('s') {
        strip(1)
    } else {
        Cow::Borrowed(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(segs: &[Seg<'_>]) -> String {
        render(segs, false).text.to_string()
    }

    #[test]
    fn singulars() {
        for (many, one) in [
            ("users", "user"),
            ("orders", "order"),
            ("categories", "category"),
            ("Categories", "Category"),
            ("addresses", "address"),
            ("classes", "class"),
            ("boxes", "box"),
            ("branches", "branch"),
            ("dishes", "dish"),
            ("houses", "house"),
            ("courses", "course"),
            ("statuses", "status"),
            ("status", "status"),
            ("address", "address"),
            ("analysis", "analysis"),
            ("people", "person"),
            ("movies", "movie"),
            ("series", "series"),
            ("data", "data"),
            ("user", "user"),
            ("us", "us"),
        ] {
            assert_eq!(singular(many), one, "{many}");
        }
    }

    #[test]
    fn names_from_the_word_before() {
        use Seg::*;
        assert_eq!(
            text(&[Lit("users"), Id, Lit("orders"), Id]),
            "/users/{userId}/orders/{orderId}"
        );
        assert_eq!(text(&[Lit("files"), Name]), "/files/{file}");
        assert_eq!(
            text(&[Lit("order-items"), Id]),
            "/order-items/{orderItemId}"
        );
        assert_eq!(
            text(&[Lit("user_addresses"), Id]),
            "/user_addresses/{userAddressId}"
        );
        assert_eq!(text(&[Lit("Users"), Id]), "/Users/{userId}");
        assert_eq!(text(&[Lit("id"), Id]), "/id/{id}");
    }

    #[test]
    fn falls_back_to_numbered_ids() {
        use Seg::*;
        assert_eq!(text(&[Id]), "/{id}");
        assert_eq!(text(&[Id, Id, Name]), "/{id}/{id2}/{id3}");
        assert_eq!(text(&[Lit("v1"), Id]), "/v1/{id}");
        assert_eq!(text(&[Lit("a"), Name]), "/a/{id}");
        assert_eq!(text(&[Lit("x1-y"), Id]), "/x1-y/{id}");
        assert_eq!(
            text(&[Lit("users"), Id, Lit("users"), Id, Id]),
            "/users/{userId}/users/{id}/{id2}"
        );
        assert_eq!(text(&[Named("id"), Lit("v2"), Id]), "/{id}/v2/{id2}");
    }

    #[test]
    fn root_and_star() {
        assert_eq!(text(&[]), "/");
        assert_eq!(&*render(&[], true).text, "/*");
        let t = render(&[Seg::Lit("users"), Seg::Id], true);
        assert_eq!(&*t.text, "/users/{userId}/*");
        assert_eq!(
            &*t.params,
            &[Param {
                segment: 1,
                name: "userId".into()
            }]
        );
    }
}
