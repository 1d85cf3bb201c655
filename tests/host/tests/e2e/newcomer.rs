//! A newcomer's first hour, on a real Spin: the template installs, `spin add` makes a worker that
//! builds, joins the namespace with no second edit, and answers by subdomain after
//! `spin up --build`.

use std::path::Path;
use std::process::Command;

use libra_test_host::harness::exchange;
use libra_test_host::project_root;
use libra_test_host::spin_cli::{SpinApp, SpinOptions, spin_binary};

fn run(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A copy of the app as a checkout has it (tracked and untracked files, nothing ignored), with
/// the built `.wasm` dependencies hard-linked in so the copy's build only compiles what changed.
fn copy_of_the_app(into: &Path) {
    let root = project_root();
    let files = run(Command::new("git").current_dir(&root).args([
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        "-z",
    ]));
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        let from = root.join(file);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = into.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    std::fs::create_dir_all(into.join("target")).unwrap();
    run(Command::new("cp")
        .arg("-al")
        .arg(root.join("target/wasm32-wasip2"))
        .arg(into.join("target/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_add_makes_a_worker_that_joins_the_namespace_with_no_second_edit() {
    let spin = spin_binary().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    copy_of_the_app(&app);
    // A Spin data directory of its own, so the template is installed for this test only.
    let data = dir.path().join("data");
    let spin_command = |args: &[&str]| {
        let mut command = Command::new(&spin);
        command.current_dir(&app).env("XDG_DATA_HOME", &data).args(args);
        command
    };
    run(&mut spin_command(&[
        "templates",
        "install",
        "--dir",
        "templates",
        "--update",
    ]));
    run(&mut spin_command(&[
        "add",
        "-t",
        "libra-worker",
        "my-app",
        "--accept-defaults",
    ]));
    let manifest = std::fs::read_to_string(app.join("spin.toml")).unwrap();
    assert!(
        manifest.contains("route = { private = true }\ncomponent = \"my-app\""),
        "{manifest}"
    );

    let options = SpinOptions {
        manifest: app.join("spin.toml"),
        as_is: true,
        args: vec!["--build".into()],
        ..SpinOptions::default()
    };
    let spin_app = tokio::task::spawn_blocking(move || SpinApp::start(&options))
        .await
        .unwrap()
        .expect("spin up --build starts the app with the new worker");
    let request = http::Request::get("/hi?x=1")
        .header("host", "my-app.localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let reply = exchange(spin_app.addr, request).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.text(), "Hello from my-app: /hi?x=1\n");
    // It joined the namespace: the dispatcher knows it (and only through the dispatcher).
    let info = exchange(
        spin_app.addr,
        http::Request::get("/dispatch/my-app/x")
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap(),
    )
    .await;
    assert_eq!(info.text(), "Hello from my-app: /x\n");
    // It was linked with the small stack docs/performance.md recommends.
    let wasm = std::fs::read(app.join("my-app/target/wasm32-wasip2/release/my_app.wasm")).unwrap();
    assert!(wasm.len() > 1000);
    assert!(crate::footprint::stack_pointer_of(&wasm) <= 64 * 1024, "a 64 KiB stack");
}
