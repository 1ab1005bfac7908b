//! Reading manifests: files, directories (every `.yaml`/`.yml` below them,
//! in name order, so output is stable) and `-` for stdin, each split into
//! its YAML documents. Documents are kept as JSON values: both commands
//! look at fields, and JSON is what the API server and the CRD schemas see.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why the input could not be read; the commands exit with 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not valid YAML: {reason}")]
    Yaml { path: String, reason: String },
    #[error("{path} holds no .yaml or .yml file")]
    EmptyDirectory { path: String },
}

/// Every document of every path, in order. Empty documents (a file of
/// comments, a trailing `---`) are dropped.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Value>, InputError> {
    let mut documents = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| InputError::Read { path: "stdin".into(), source })?;
            documents.extend(parse("stdin", &text)?);
        } else if path.is_dir() {
            let files = yaml_files(path)?;
            if files.is_empty() {
                return Err(InputError::EmptyDirectory { path: path.display().to_string() });
            }
            for file in files {
                documents.extend(read_file(&file)?);
            }
        } else {
            documents.extend(read_file(path)?);
        }
    }
    Ok(documents)
}

fn read_file(path: &Path) -> Result<Vec<Value>, InputError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read { path: name.clone(), source })?;
    parse(&name, &text)
}

/// The documents of one YAML text; `source` names it in errors.
pub fn parse(source: &str, text: &str) -> Result<Vec<Value>, InputError> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| InputError::Yaml { path: source.to_owned(), reason: e.to_string() })?;
    Ok(values.into_iter().filter(|v| !v.is_null()).collect())
}

/// `.yaml` and `.yml` files below `dir`, recursively, sorted by path.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let mut found = Vec::new();
    let read_err = |source| InputError::Read { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            found.extend(yaml_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Documents as one multi-document YAML stream.
pub fn to_yaml(values: &[Value]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(value)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_documents_are_dropped_and_order_is_kept() {
        let docs = parse("t", "# only a comment\n---\nkind: A\n---\nkind: B\n---\n").unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["A", "B"]);
    }

    #[test]
    fn invalid_yaml_names_the_source() {
        let err = parse("bad.yaml", "a: [").unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml is not valid YAML"), "{err}");
    }

    #[test]
    fn yaml_round_trips_through_text() {
        let docs = parse("t", "a: \"1\"\nb: 1\nc: \"yes\"\nd: [x, {e: null}]\n").unwrap();
        assert_eq!(parse("t", &to_yaml(&docs).unwrap()).unwrap(), docs);
    }
}
