//! The repository stands alone: nothing in it points at files that only its developers have.

use std::path::{Path, PathBuf};

/// Every file of the repository but build output and version control.
fn repository_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && name != ".git" {
                repository_files(&path, files);
            }
        } else {
            files.push(path);
        }
    }
}

/// Written in pieces so that this file does not match itself.
fn outside_references() -> [String; 3] {
    [
        ["..", "/shared"].concat(),
        ["SPEC", " §"].concat(),
        ["SPEC", ".md"].concat(),
    ]
}

#[test]
fn no_file_points_outside_the_repository() {
    let mut files = Vec::new();
    repository_files(Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    assert!(files.len() > 50, "the walk found the repository");
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            for reference in outside_references() {
                if line.contains(&reference) {
                    found.push(format!("{}:{}: {line}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
