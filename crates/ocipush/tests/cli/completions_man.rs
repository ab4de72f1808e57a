//! `ocipush completions SHELL` and `ocipush man`: generated from the CLI definition, so these
//! check that what comes out is usable (bash parses and completes it, the page is roff with
//! every push option) and that every subcommand's `--help` carries examples.

use std::process::Command;

use crate::common::*;

const SUBCOMMANDS: [&str; 7] = [
    "push",
    "list",
    "serve",
    "login",
    "logout",
    "completions",
    "man",
];

/// Long options of `push` a user must be able to complete and read about.
const PUSH_OPTIONS: [&str; 13] = [
    "--registry",
    "--tag",
    "--platform",
    "--include",
    "--exclude",
    "--jobs",
    "--json",
    "--password-stdin",
    "--plain-http",
    "--ca-file",
    "--timeout",
    "--compression",
    "--no-cache",
];

fn run_ok(args: &[&str]) -> String {
    let out = ocipush(args, None);
    assert!(
        out.status.success(),
        "ocipush {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_flags() {
    let script = run_ok(&["completions", "bash"]);
    for word in SUBCOMMANDS.iter().chain(&PUSH_OPTIONS) {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocipush.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Ask the completion function itself, as bash would on <TAB>.
    let complete = |words: &str| -> String {
        let probe = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _ocipush ocipush \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("ocipush pu"), "push");
    assert_eq!(complete("ocipush push --plat"), "--platform");
    assert_eq!(complete("ocipush completions fi"), "fish");
}

#[test]
fn every_shell_gets_a_script_naming_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = run_ok(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            script.contains("platform"),
            "{shell} completion lacks --platform"
        );
    }
    let out = ocipush(&["completions", "tcsh"], None);
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
}

#[test]
fn man_page_is_roff_with_every_command_and_push_option() {
    let page = run_ok(&["man"]);
    assert!(
        page.contains(".TH OCIPUSH 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    for section in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "ENVIRONMENT",
        "\"EXIT STATUS\"",
    ] {
        assert!(
            page.contains(&format!(".SH {section}")),
            "no {section} section"
        );
    }
    for sub in SUBCOMMANDS {
        let heading = format!(".SH \"OCIPUSH {}\"", sub.to_uppercase());
        assert!(page.contains(&heading), "no section {heading}");
    }
    // roff escapes the dashes of options: `--platform` is written `\-\-platform`.
    for option in PUSH_OPTIONS {
        let escaped = option.replace('-', "\\-");
        assert!(page.contains(&escaped), "man page lacks {option}");
    }
    assert!(
        page.contains(".SS EXAMPLES\n.nf\n"),
        "examples are kept as typed"
    );
    assert!(
        page.contains(".SH EXAMPLES\n.nf\n"),
        "and the program's own examples"
    );
    assert!(page.contains("OCIPUSH_TIMEOUT"));
    // man itself must render it without complaint, when man is installed.
    if ocipush_testkit::tools::find_on_path("man").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocipush.1");
        std::fs::write(&path, &page).unwrap();
        let out = Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "100")
            .env_remove("MAN_KEEP_FORMATTING")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("OCIPUSH PUSH"), "{text}");
        assert!(text.contains("--platform"), "{text}");
    }
}

#[test]
fn every_subcommand_help_has_examples() {
    assert!(run_ok(&["--help"]).contains("Examples:\n  ocipush push"));
    for sub in SUBCOMMANDS {
        let help = run_ok(&[sub, "--help"]);
        let examples = help
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("`ocipush {sub} --help` has no examples:\n{help}"))
            .1;
        assert!(
            examples
                .lines()
                .any(|l| l.trim_start().starts_with("ocipush ")
                    || l.contains(&format!("ocipush {sub}"))),
            "`ocipush {sub} --help` examples run no ocipush:\n{examples}"
        );
    }
}

/// What a newcomer reads first: push's usage shows DEST and -r, the idpbuilder path and the
/// environment variable standing in for -r are named, and `-q` is described for what it does
/// outside push too.
#[test]
fn push_help_shows_both_forms_idpbuilder_and_the_registry_variable() {
    let help = run_ok(&["push", "--help"]);
    assert!(
        help.contains("Usage: ocipush push [OPTIONS] SOURCE [DEST]"),
        "{help}"
    );
    assert!(help.contains("-r REGISTRY[/NAMESPACE] SOURCE..."), "{help}");
    assert!(help.contains("-r idpbuilder"), "{help}");
    assert!(help.contains("OCIPUSH_REGISTRY"), "{help}");
    let page = run_ok(&["man"]);
    assert!(
        page.contains("idpbuilder"),
        "the man page names the idpbuilder path"
    );
    for sub in ["serve", "login", "logout", "man"] {
        let help = run_ok(&[sub, "--help"]);
        assert!(
            help.contains("(and, for push, the pushed"),
            "{sub} --help: -q reads as push's: {help}"
        );
    }
    // list's --platform says what the rows show, not what push writes.
    let list = run_ok(&["list", "--help"]);
    assert!(list.contains("the rows show what `push"), "{list}");
}
