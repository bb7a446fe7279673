//! Finds where each top-level `[[link]]` table of a config starts, so the
//! loader can parse and build one link at a time. Parsing a whole file of
//! 100 000 links at once holds every token, every parser event and every
//! table of the file together (about 400 MB, most of `validate`'s time
//! spent having the pages zeroed); one section at a time holds one link's.
//!
//! The scan knows just enough TOML to tell a table header from text that
//! looks like one: comments, the four kinds of string, and arrays and
//! inline tables spanning lines. Whatever it cannot vouch for, it gives up
//! on, and the file is parsed whole.

/// The byte offsets of the lines that open a top-level `[[link]]` table,
/// in order; `None` if there is none, or the file is not plain enough to
/// be sure (an unclosed string or bracket: the whole-file parse then says
/// what is wrong).
pub(super) fn link_sections(text: &str) -> Option<Vec<usize>> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    // Open brackets and braces of the value being read: a line that starts
    // inside one is not a header.
    let mut depth = 0usize;
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        if line_start && depth == 0 {
            line_start = false;
            let line = i;
            while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                i += 1;
            }
            if bytes.get(i) == Some(&b'[') {
                if is_link_header(&bytes[i..]) {
                    starts.push(line);
                }
                // Any header: skip it, its quoted key parts included.
                i = skip_header(bytes, i)?;
            }
            continue;
        }
        match bytes[i] {
            b'\n' => {
                line_start = true;
                i += 1;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' | b'\'' => i = skip_string(bytes, i)?,
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            _ => i += 1,
        }
    }
    (depth == 0 && !starts.is_empty()).then_some(starts)
}

/// Whether `at` (starting with `[`) is `[[link]]`, the key bare or quoted,
/// with optional blanks.
fn is_link_header(at: &[u8]) -> bool {
    let Some(rest) = at.strip_prefix(b"[[") else {
        return false;
    };
    let rest = trim_blanks(rest);
    let rest = if let Some(r) = rest.strip_prefix(b"\"link\"") {
        r
    } else if let Some(r) = rest.strip_prefix(b"'link'") {
        r
    } else if let Some(r) = rest.strip_prefix(b"link") {
        r
    } else {
        return false;
    };
    trim_blanks(rest).starts_with(b"]]")
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', rest)) = s.split_first() {
        s = rest;
    }
    s
}

/// The offset of the end of the header line starting at `i`, past quoted
/// key parts (which may hold `#` or brackets).
fn skip_header(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i < bytes.len() && bytes[i] != b'\n' {
        match bytes[i] {
            b'"' | b'\'' => i = skip_string(bytes, i)?,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Some(i)
}

/// The offset just past the string starting at `i` (a `"` or `'`):
/// basic, literal, or either multi-line kind. `None` if it does not end
/// where TOML says it must.
fn skip_string(bytes: &[u8], i: usize) -> Option<usize> {
    let quote = bytes[i];
    let basic = quote == b'"';
    let triple = bytes
        .get(i..i + 3)
        .is_some_and(|t| t.iter().all(|b| *b == quote));
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if basic => j += 2,
            b'\n' if !triple => return None,
            b if b == quote => {
                if !triple {
                    return Some(j + 1);
                }
                let run = bytes[j..].iter().take_while(|b| **b == quote).count();
                if run >= 3 {
                    // Up to two quotes before the closing three are content.
                    return Some(j + run);
                }
                j += run;
            }
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Option<Vec<&str>> {
        let starts = link_sections(text)?;
        Some(
            starts
                .iter()
                .enumerate()
                .map(|(i, s)| &text[*s..starts.get(i + 1).copied().unwrap_or(text.len())])
                .collect(),
        )
    }

    #[test]
    fn each_top_level_link_header_opens_a_section() {
        let text = "[daemon]\nshutdown_grace = \"5s\"\n\n[[link]]\nname = \"a\"\n[[link.inlet]]\ntype = \"x\"\n  [[ \"link\" ]] # b\nname = \"b\"\n[[link]]\r\nname = \"c\"\n";
        assert_eq!(
            sections(text),
            Some(vec![
                "[[link]]\nname = \"a\"\n[[link.inlet]]\ntype = \"x\"\n",
                "  [[ \"link\" ]] # b\nname = \"b\"\n",
                "[[link]]\r\nname = \"c\"\n",
            ])
        );
    }

    #[test]
    fn headers_inside_strings_comments_and_values_are_not_headers() {
        let text = concat!(
            "[[link]]\n",
            "name = \"a\"\n",
            "doc = \"\"\"\n[[link]]\n\"\"\"\n",
            "raw = '''\n[[link]]\n'''\n",
            "quoted = \"\"\"a \\\"\"\" [[link]] \"\"\"\n",
            "ends = \"\"\"x\"\"\"\"\"\n",
            "# [[link]]\n",
            "tags = [\n[[\"link\"]],\n]\n",
            "inline = {\n a = 1,\n}\n",
            "[[link]]\n",
            "name = \"b\"\n",
        );
        let found = sections(text).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].starts_with("[[link]]\nname = \"b\""));
    }

    #[test]
    fn other_headers_stay_in_their_section() {
        let text = "[[link]]\nname = \"a\"\n[[links]]\n[link.x]\n[[linked]]\n";
        assert_eq!(sections(text).map(|s| s.len()), Some(1));
    }

    #[test]
    fn what_it_cannot_vouch_for_is_left_to_the_whole_file_parse() {
        for text in [
            "title = 1\n",
            "[[link]]\nname = \"a\nb\"\n",
            "[[link]]\ndoc = \"\"\"\nnever closed\n",
            "[[link]]\ntags = [1,\n",
            "[[link]]\nx = ]\n",
        ] {
            assert_eq!(link_sections(text), None, "{text:?}");
        }
    }

    #[test]
    fn blanks_at_the_end_of_the_file_are_no_line() {
        assert_eq!(link_sections("[[link]]\n  "), Some(vec![0]));
        assert_eq!(link_sections("[[link]]\n\t"), Some(vec![0]));
    }
}
