//! A request's header fields read once for every detector (issue 15): the list walked into
//! a slice, and the first value of each field a detector looks up by name.
//!
//! Walking [`Headers`] cuts each field's name and value out of its block as checked text
//! (~40 instructions a field); detection walked a request's fields about ten times (the
//! protocol checks, inputs, tokens, credentials, lookups by name). [`RequestFields::of`]
//! walks them once; the detectors read the slice and the named values through
//! [`super::Request`].

use crate::http::Headers;

/// A request's fields in order, and the first of each field looked up by name.
#[derive(Debug)]
pub struct RequestFields<'a> {
    /// One allocation: an inline array big enough for a browser's fields made the struct
    /// large, and moving it cost more than the walks it saved.
    list: Vec<(&'a str, &'a str)>,
    content_type: Option<&'a str>,
    host: Option<&'a str>,
    authority: Option<&'a str>,
    user_agent: Option<&'a str>,
    authorization: Option<&'a str>,
    referer: Option<&'a str>,
}

/// The fields a detector looks up by name (the first of each, as [`super::Request::header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    ContentType,
    Host,
    /// HTTP/2's `:authority` kept as a field (offline lines).
    Authority,
    UserAgent,
    Authorization,
    Referer,
}

impl Named {
    /// The field's name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            Self::ContentType => "content-type",
            Self::Host => "host",
            Self::Authority => ":authority",
            Self::UserAgent => "user-agent",
            Self::Authorization => "authorization",
            Self::Referer => "referer",
        }
    }
}

impl<'a> RequestFields<'a> {
    /// One walk over `headers`.
    pub fn of(headers: &'a Headers) -> Self {
        let mut fields = Self {
            list: Vec::with_capacity(headers.len()),
            content_type: None,
            host: None,
            authority: None,
            user_agent: None,
            authorization: None,
            referer: None,
        };
        for (name, value) in headers {
            fields.list.push((name, value));
            // The names differ in length but two: one compare turns every other name away.
            let slot = match name.len() {
                12 if name.eq_ignore_ascii_case("content-type") => &mut fields.content_type,
                4 if name.eq_ignore_ascii_case("host") => &mut fields.host,
                10 if name.eq_ignore_ascii_case(":authority") => &mut fields.authority,
                10 if name.eq_ignore_ascii_case("user-agent") => &mut fields.user_agent,
                13 if name.eq_ignore_ascii_case("authorization") => &mut fields.authorization,
                7 if name.eq_ignore_ascii_case("referer") => &mut fields.referer,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        fields
    }

    /// The fields in order, as sent.
    pub fn list(&self) -> &[(&'a str, &'a str)] {
        &self.list
    }

    /// The value of the first field `which`.
    pub fn get(&self, which: Named) -> Option<&'a str> {
        match which {
            Named::ContentType => self.content_type,
            Named::Host => self.host,
            Named::Authority => self.authority,
            Named::UserAgent => self.user_agent,
            Named::Authorization => self.authorization,
            Named::Referer => self.referer,
        }
    }
}

/// A request's fields in order: from [`RequestFields`] when the request has them, else walked.
#[derive(Clone)]
pub enum Fields<'a> {
    Read(std::slice::Iter<'a, (&'a str, &'a str)>),
    Walk(<&'a Headers as IntoIterator>::IntoIter),
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Read(list) => list.next().copied(),
            Self::Walk(walk) => walk.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_walk_keeps_order_duplicates_and_the_first_of_each_name() {
        let headers: Headers = [
            ("Host", "a.example"),
            ("HOST", "b.example"),
            ("User-Agent", "curl/8"),
            ("content-type", "application/json; charset=utf-8"),
            ("Authorization", "Bearer x"),
            ("Referer", "https://c.example/"),
            (":authority", "d.example"),
            ("X-Other", "1"),
        ]
        .into();
        let f = RequestFields::of(&headers);
        assert_eq!(f.list(), headers.iter().collect::<Vec<_>>());
        assert_eq!(f.get(Named::Host), Some("a.example"));
        assert_eq!(f.get(Named::UserAgent), Some("curl/8"));
        assert_eq!(
            f.get(Named::ContentType),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(f.get(Named::Authorization), Some("Bearer x"));
        assert_eq!(f.get(Named::Referer), Some("https://c.example/"));
        assert_eq!(f.get(Named::Authority), Some("d.example"));
        for which in [
            Named::ContentType,
            Named::Host,
            Named::Authority,
            Named::UserAgent,
            Named::Authorization,
            Named::Referer,
        ] {
            assert_eq!(f.get(which), headers.get(which.name()), "{which:?}");
        }
    }

    #[test]
    fn many_fields_are_all_kept() {
        let many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("X-F{i}"), i.to_string()))
            .collect();
        let mut with_host = many.clone();
        with_host.push(("host".into(), "last.example".into()));
        let headers: Headers = with_host.iter().map(|(n, v)| (n, v)).collect();
        let f = RequestFields::of(&headers);
        assert_eq!(f.list(), headers.iter().collect::<Vec<_>>());
        assert_eq!(f.get(Named::Host), Some("last.example"));
        let empty = Headers::new();
        let f = RequestFields::of(&empty);
        assert!(f.list().is_empty());
        assert_eq!(f.get(Named::Host), None);
    }
}
