//! The repository stands alone: nothing in it points at files that only its developers have.

use crate::common;

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
    let files = common::repository_files();
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
