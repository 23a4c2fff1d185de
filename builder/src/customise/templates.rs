//! `.j2` files in the overlay, rendered with minijinja into the file without the suffix.
//! An unknown variable is an error, not an empty string: a typo must not ship a broken fstab.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Account, Context, CustomiseError, PartitionVars};
use crate::rootfs::{Entry, Kind, Tree};

/// The variables a template sees.
#[derive(Debug, Clone, Serialize)]
pub struct Vars {
    pub name: String,
    pub version: String,
    pub board: String,
    pub arch: String,
    pub suite: String,
    pub hostname: String,
    pub build_date: String,
    pub user: UserVars,
    /// By partition name: `partitions.data.partuuid`.
    pub partitions: BTreeMap<String, PartitionVars>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserVars {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Vars {
    pub fn new(cx: &Context, user: &Account) -> Self {
        Vars {
            name: cx.name.clone(),
            version: cx.version.clone(),
            board: cx.board.clone(),
            arch: cx.arch.clone(),
            suite: cx.suite.clone(),
            hostname: cx.hostname.clone(),
            build_date: crate::time::rfc3339(cx.source_date_epoch),
            user: UserVars {
                name: user.name.clone(),
                uid: user.uid,
                gid: user.gid,
            },
            partitions: cx.partitions.clone(),
        }
    }
}

/// Renders one template.
pub fn render(path: &str, text: &str, vars: &Vars) -> Result<String, CustomiseError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    let fail = |e: minijinja::Error| CustomiseError::Template {
        path: path.to_owned(),
        message: match e.line() {
            Some(line) => format!("line {line}: {}", e.detail().unwrap_or(&e.to_string())),
            None => e.to_string(),
        },
    };
    env.add_template(path, text).map_err(fail)?;
    env.get_template(path)
        .map_err(fail)?
        .render(vars)
        .map_err(fail)
}

/// Renders every `*.j2` regular file in the tree into its name without `.j2`, with the
/// template's mode and owner, and removes the template.
pub fn render_all(tree: &mut Tree, vars: &Vars, mtime: i64) -> Result<Vec<String>, CustomiseError> {
    let templates: Vec<(Vec<u8>, Entry)> = tree
        .entries()
        .filter(|(p, e)| p.ends_with(b".j2") && matches!(e.kind, Kind::File { .. }))
        .map(|(p, e)| (p.to_vec(), e.clone()))
        .collect();
    let mut done = Vec::new();
    for (path, entry) in templates {
        let name = String::from_utf8_lossy(&path).into_owned();
        let text = super::read_text(tree, &name)?.unwrap_or_default();
        let out = render(&name, &text, vars)?;
        let mut rendered = Entry::file(out.into_bytes(), entry.mode, mtime);
        rendered.uid = entry.uid;
        rendered.gid = entry.gid;
        tree.remove(&path);
        let target = &path[..path.len() - 3];
        tree.insert(target, rendered);
        done.push(String::from_utf8_lossy(target).into_owned());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut partitions = BTreeMap::new();
        partitions.insert(
            "data".to_owned(),
            PartitionVars {
                number: 7,
                partuuid: "0a1b2c3d-07".into(),
                label: "data".into(),
                fs_uuid: Some("5f1e…".into()),
            },
        );
        Vars {
            name: "d3kOS".into(),
            version: "0.1.0".into(),
            board: "rpi4".into(),
            arch: "arm64".into(),
            suite: "trixie".into(),
            hostname: "d3kos".into(),
            build_date: "2026-11-29T00:00:00Z".into(),
            user: UserVars {
                name: "d3kos".into(),
                uid: 101,
                gid: 101,
            },
            partitions,
        }
    }

    #[test]
    fn template_renders_partition_ids_and_keeps_its_mode() {
        let mut t = Tree::new();
        let mut e = Entry::file(
            b"PARTUUID={{ partitions.data.partuuid }} /data ext4 defaults 0 0 # {{ board }}\n"
                .to_vec(),
            0o600,
            0,
        );
        e.gid = 5;
        t.insert(b"etc/fstab.j2", e);
        let done = render_all(&mut t, &vars(), 42).unwrap();
        assert_eq!(done, vec!["etc/fstab".to_owned()]);
        assert!(t.get(b"etc/fstab.j2").is_none());
        assert_eq!(
            t.read(b"etc/fstab").unwrap().unwrap(),
            b"PARTUUID=0a1b2c3d-07 /data ext4 defaults 0 0 # rpi4\n"
        );
        let f = t.get(b"etc/fstab").unwrap();
        assert_eq!((f.mode, f.gid, f.mtime), (0o600, 5, 42));
    }

    #[test]
    fn an_unknown_variable_is_an_error_naming_file_and_line() {
        let e = render("etc/x.j2", "ok\n{{ partitions.dta.partuuid }}\n", &vars()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("etc/x.j2: line 2:"), "{msg}");
    }
}
