//! Reading manifests for the offline commands: files, directories and standard input, each holding
//! one or more YAML (or JSON) documents, the way `kubectl apply -f` takes them.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where a document came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub source: String,
    /// 1-based position of the document in its source.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.source, self.document)
    }
}

/// One Kubernetes object read from the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub origin: Origin,
    pub object: Value,
}

/// The input could not be read: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not UTF-8 text; manifests must be YAML or JSON")]
    NotText { path: String },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}: no .yaml, .yml or .json files in this directory")]
    EmptyDirectory { path: String },
}

/// Read every `-f` argument: `-` is standard input, a directory means its `.yaml`, `.yml` and
/// `.json` files (sorted, not recursive, as kubectl does without `-R`).
pub fn read_all(arguments: &[PathBuf]) -> Result<Vec<Document>, InputError> {
    let mut documents = Vec::new();
    for argument in arguments {
        if argument.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| InputError::Io {
                    path: "<stdin>".to_string(),
                    source,
                })?;
            documents.extend(parse("<stdin>", &bytes)?);
        } else if argument.is_dir() {
            let files = manifest_files(argument)?;
            if files.is_empty() {
                return Err(InputError::EmptyDirectory {
                    path: argument.display().to_string(),
                });
            }
            for file in files {
                documents.extend(read_file(&file)?);
            }
        } else {
            documents.extend(read_file(argument)?);
        }
    }
    Ok(documents)
}

fn read_file(path: &Path) -> Result<Vec<Document>, InputError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: name.clone(),
        source,
    })?;
    parse(&name, &bytes)
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Split `bytes` into Kubernetes objects. Empty documents are skipped and `kind: List` is
/// expanded into its items, as kubectl does.
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<Document>, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::NotText {
        path: source.to_string(),
    })?;
    let values: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|err| InputError::Yaml {
        path: source.to_string(),
        message: first_line(&err.to_string()),
    })?;
    let mut documents = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let origin = Origin {
            source: source.to_string(),
            document: index + 1,
        };
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                documents.extend(items.into_iter().map(|object| Document {
                    origin: origin.clone(),
                    object,
                }));
            }
            object => documents.push(Document { origin, object }),
        }
    }
    Ok(documents)
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}
