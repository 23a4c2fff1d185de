//! One command in a cached tool chroot, with host folders bound in: a private mount and PID
//! namespace, so the binds and /proc vanish with the process, whatever happens to it.

use std::path::Path;

use crate::tool::{Invocation, ToolError};

/// A host folder seen inside the chroot at `inside` (an absolute path).
pub struct Bind<'a> {
    pub host: &'a Path,
    pub inside: &'static str,
    pub read_only: bool,
}

/// Runs `command` with /bin/sh in the chroot at `root`; its output goes to the log as
/// `tag`. The mount points are made first.
pub fn run(root: &Path, binds: &[Bind], command: &str, tag: &str) -> Result<(), ToolError> {
    let mut script = String::from(
        "set -e\nroot=$1\nshift\nmount -t proc proc \"$root/proc\"\nmount --rbind /dev \"$root/dev\"\n",
    );
    for b in binds {
        let at = format!("\"$root{}\"", b.inside);
        script.push_str(&format!("mkdir -p {at}\nmount --bind \"$1\" {at}\nshift\n"));
        if b.read_only {
            script.push_str(&format!("mount -o remount,bind,ro {at}\n"));
        }
    }
    script.push_str("exec chroot \"$root\" /bin/sh -c \"$1\"\n");
    let mut inv = Invocation::new("unshare", "install util-linux")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(script)
        .arg("chroot")
        .arg(root);
    for b in binds {
        inv = inv.arg(b.host);
    }
    inv.arg(command).run_logged(tag)
}
