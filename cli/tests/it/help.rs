//! The `--help` of `nitro` and of every command, as the user reads it.

use crate::support::nitro;

fn help(args: &[&str]) -> String {
    let out = nitro().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_of_every_command() {
    insta::assert_snapshot!("help_nitro", help(&[]));
    for command in ["dev", "build", "start", "init", "test", "doc"] {
        insta::assert_snapshot!(format!("help_{command}"), help(&[command]));
    }
    insta::assert_snapshot!("help_task_run", help(&["task", "run"]));
}
