//! What a run uploads: `full_detail_dir` walked recursively and each of `full_detail_files`,
//! each under `<owner>/<repo>/<commit>/<relative path>`, at most [`PARALLEL_UPLOADS`] at a
//! time; and the index page that replaces the list of links when there are many.

use crate::NotifyError;
use crate::store::{Link, Store};
use bytes::Bytes;
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Uploads in flight at once.
pub const PARALLEL_UPLOADS: usize = 8;

/// Above this many files the comment links an index page instead of each file.
pub const INDEX_THRESHOLD: usize = 20;

/// One file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Where it is read from.
    pub source: PathBuf,
    /// Its path under the commit's folder, `/`-separated (`logs/unit.txt`).
    pub name: String,
}

/// The files of `dir` (recursively; symbolic links followed; sorted by name) and of `files`
/// (each under its own file name).
///
/// Errors: [`NotifyError::Io`] when a folder cannot be walked or a file is missing;
/// [`NotifyError::Duplicate`] when two files would get the same name.
pub fn collect(dir: Option<&Path>, files: &[PathBuf]) -> Result<Vec<Upload>, NotifyError> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut add = |name: String, source: PathBuf| -> Result<(), NotifyError> {
        if let Some(other) = by_name.insert(name.clone(), source.clone()) {
            return Err(NotifyError::Duplicate {
                name,
                first: other,
                second: source,
            });
        }
        Ok(())
    };
    if let Some(dir) = dir {
        for entry in walkdir::WalkDir::new(dir).follow_links(true) {
            let entry = entry.map_err(|e| NotifyError::Io {
                path: e.path().unwrap_or(dir).to_owned(),
                reason: e.to_string(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            add(name.join("/"), entry.path().to_owned())?;
        }
    }
    for f in files {
        if !f.is_file() {
            return Err(NotifyError::Io {
                path: f.clone(),
                reason: "not a file".to_owned(),
            });
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        add(name, f.clone())?;
    }
    Ok(by_name
        .into_iter()
        .map(|(name, source)| Upload { source, name })
        .collect())
}

/// The Content-Type of a file name (by extension; text for logs and unknown text-like names,
/// `application/octet-stream` otherwise).
pub fn content_type(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".log") || lower.ends_with(".out") || lower.ends_with(".err") {
        return "text/plain; charset=utf-8".to_owned();
    }
    match mime_guess::from_path(name).first() {
        Some(m) if m.type_() == mime_guess::mime::TEXT => format!("{m}; charset=utf-8"),
        Some(m) => m.to_string(),
        None => "application/octet-stream".to_owned(),
    }
}

/// Uploads every file under `<base>/<name>` (`base` is relative to the store's prefix), at
/// most [`PARALLEL_UPLOADS`] at a time, each expiring at `expires_unix`; calls `done` after
/// each. Returns the links in the order of `uploads`.
///
/// Errors: the first failure ([`NotifyError::Io`] reading, [`NotifyError::Store`] writing);
/// uploads already made stay (they expire like the others).
pub async fn upload_all(
    store: &Store,
    base: &str,
    uploads: &[Upload],
    expires_unix: i64,
    done: &(dyn Fn(&Link) + Sync),
) -> Result<Vec<Link>, NotifyError> {
    let results: Vec<Result<(usize, Link), NotifyError>> =
        futures::stream::iter(uploads.iter().enumerate())
            .map(|(i, u)| async move {
                let bytes = tokio::fs::read(&u.source)
                    .await
                    .map_err(|e| NotifyError::Io {
                        path: u.source.clone(),
                        reason: e.to_string(),
                    })?;
                let key = format!("{base}/{}", u.name);
                let link = store
                    .put(
                        &key,
                        Bytes::from(bytes),
                        &content_type(&u.name),
                        expires_unix,
                    )
                    .await?;
                done(&link);
                Ok((i, link))
            })
            .buffer_unordered(PARALLEL_UPLOADS)
            .collect()
            .await;
    let mut links: Vec<(usize, Link)> = results.into_iter().collect::<Result<_, _>>()?;
    links.sort_by_key(|(i, _)| *i);
    Ok(links.into_iter().map(|(_, l)| l).collect())
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The index page of a commit's files: a title and one link per file (`links` with their
/// names relative to the commit's folder).
pub fn index_html(title: &str, names_and_links: &[(String, Link)]) -> String {
    let title = html_escape(title);
    let mut rows = String::new();
    for (name, link) in names_and_links {
        rows.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            html_escape(&link.url),
            html_escape(name)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n{rows}</ul>\n\
         </body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a/report.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("build.log"), "text/plain; charset=utf-8");
        assert_eq!(content_type("x.json"), "application/json");
        assert_eq!(content_type("core.dump"), "application/octet-stream");
    }

    #[test]
    fn index_escapes_names_and_urls() {
        let link = Link {
            key: "k".to_owned(),
            url: "https://s/a?x=1&y=2".to_owned(),
        };
        let page = index_html("t<1>", &[("<script>.txt".to_owned(), link)]);
        assert!(page.contains("<title>t&lt;1&gt;</title>"));
        assert!(page.contains("href=\"https://s/a?x=1&amp;y=2\""));
        assert!(page.contains("&lt;script&gt;.txt"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn collect_walks_nested_folders_and_adds_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("d/sub"))?;
        std::fs::write(dir.path().join("d/a.txt"), "a")?;
        std::fs::write(dir.path().join("d/sub/b.log"), "b")?;
        std::fs::write(dir.path().join("extra.json"), "{}")?;
        let got = collect(
            Some(&dir.path().join("d")),
            &[dir.path().join("extra.json")],
        )?;
        let names: Vec<_> = got.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "extra.json", "sub/b.log"]);
        let dup = collect(Some(&dir.path().join("d")), &[dir.path().join("d/a.txt")]);
        assert!(matches!(dup, Err(NotifyError::Duplicate { .. })));
        Ok(())
    }
}
