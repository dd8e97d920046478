//! `gatehouse --help` and the help of every subcommand describe every option.

use std::process::Command;

/// The help text of `gatehouse <path…> --help`.
fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(path)
        .arg("--help")
        .output()
        .expect("the gatehouse binary runs");
    assert!(out.status.success(), "{path:?} --help exits 0");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The subcommand names listed under "Commands:" (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every entry under "Options:" and "Arguments:" with its description (continuation lines
/// joined).
fn described_items(text: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = Vec::new();
    let mut in_section = false;
    for line in text.lines() {
        if line == "Options:" || line == "Arguments:" {
            in_section = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_section = false;
            continue;
        }
        if !in_section {
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent <= 6 && (trimmed.starts_with('-') || trimmed.starts_with('<')) {
            // "-c, --config <CONFIG>  The gate configuration file"
            let (name, description) = match trimmed.split_once("  ") {
                Some((n, d)) => (n.trim().to_string(), d.trim().to_string()),
                None => (trimmed.to_string(), String::new()),
            };
            items.push((name, description));
        } else if let Some(last) = items.last_mut() {
            last.1.push(' ');
            last.1.push_str(trimmed);
        }
    }
    items
}

#[test]
fn every_subcommand_and_every_option_has_a_description_in_the_help() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut commands = 0;
    let mut options = 0;
    while let Some(path) = queue.pop() {
        let text = help(&path);
        commands += 1;
        let about = text.lines().next().unwrap_or_default();
        assert!(!about.trim().is_empty(), "{path:?} has a description");
        for (item, description) in described_items(&text) {
            options += 1;
            assert!(
                !description.trim().trim_start_matches('[').is_empty()
                    && !description.starts_with("[default"),
                "`gatehouse {}` option {item} has no description",
                path.join(" ")
            );
        }
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
    }
    // gatehouse, demo, sim (+3), gate (+5), server (+4) at least.
    assert!(commands >= 17, "walked {commands} commands");
    assert!(options >= 30, "checked {options} options");
}
