//! Out-of-tree kernel modules the board names, built against the image's own kernel: its
//! Debian headers, the suite's cross compiler and the amd64 kbuild tools (linux-kbuild is
//! Multi-Arch: foreign for exactly this), in a chroot cached per kernel. Nothing runs under
//! emulation.

use std::path::{Path, PathBuf};

use appliance::layout::Arch;

use super::chroot::Bind;
use super::{CompileError, io};
use crate::base::{Cache, Keyed, mmdebstrap};

/// The kernel an image carries: its release (`uname -r`, the folder under /usr/lib/modules)
/// and the Debian version of its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub release: String,
    pub version: String,
}

impl Kernel {
    /// The one kernel among `packages` (name, version) whose modules folder `has_modules`
    /// finds; none or several is an error.
    pub fn find(
        packages: &[(String, String)],
        has_modules: impl Fn(&str) -> bool,
    ) -> Result<Kernel, String> {
        let found: Vec<Kernel> = packages
            .iter()
            .filter_map(|(name, version)| {
                let release = name.strip_prefix("linux-image-")?;
                (release.starts_with(|c: char| c.is_ascii_digit()) && has_modules(release)).then(
                    || Kernel {
                        release: release.to_owned(),
                        version: version.clone(),
                    },
                )
            })
            .collect();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(
                "the root file system has no Debian kernel (no linux-image-VERSION package \
                       with its modules): add the kernel to the board's [base] packages"
                    .into(),
            ),
            many => Err(format!(
                "the root file system has {} kernels ({}): a module is built for one",
                many.len(),
                many.iter()
                    .map(|k| k.release.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The version-independent part of the headers: `6.12.117+deb13-arm64` → `6.12.117+deb13`.
    fn common(&self) -> &str {
        self.release
            .rsplit_once('-')
            .map_or(&self.release, |(c, _)| c)
    }
}

/// What a module build needs.
pub struct ModuleRequest<'a> {
    pub arch: Arch,
    pub kernel: &'a Kernel,
    pub suite: &'a str,
    pub mirror: &'a str,
    pub cache: &'a Cache,
    pub refresh: bool,
    pub source_date_epoch: i64,
}

fn triplet(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "aarch64-linux-gnu",
        Arch::Amd64 => "x86_64-linux-gnu",
    }
}

fn kernel_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "arm64",
        Arch::Amd64 => "x86",
    }
}

fn options(req: &ModuleRequest) -> mmdebstrap::Options {
    let k = req.kernel;
    let arch = req.arch.debian_name();
    let cross = format!("gcc-{}", triplet(req.arch).replace('_', "-"));
    let mut packages = vec![
        "make".to_owned(),
        cross,
        format!("linux-kbuild-{}={}", k.common(), k.version),
        format!("linux-headers-{}-common={}", k.common(), k.version),
    ];
    packages.sort();
    // The flavour's headers depend on its kernel image and the suite's native gcc; a module
    // needs neither, so they are unpacked rather than installed.
    let headers = format!("linux-headers-{}", k.release);
    mmdebstrap::Options {
        suite: req.suite.to_owned(),
        mirror: req.mirror.to_owned(),
        variant: "minbase".into(),
        architectures: vec!["amd64".into(), arch.to_owned()],
        components: vec!["main".into()],
        extra_suites: Vec::new(),
        packages,
        essential_hooks: Vec::new(),
        customize_hooks: vec![format!(
            "chroot \"$1\" sh -c 'cd /tmp && apt-get download {headers}:{arch}={v} \
             && dpkg-deb -x {headers}_*.deb / && rm {headers}_*.deb'",
            v = k.version
        )],
        source_date_epoch: req.source_date_epoch,
    }
}

/// Builds the single-file module `source` (NAME.c) for the request's kernel; returns the
/// module's bytes, stripped of debug information.
pub fn build(req: &ModuleRequest, source: &Path) -> Result<Vec<u8>, CompileError> {
    if req.arch != Arch::Arm64 {
        return Err(CompileError::NotForBoard {
            path: source.to_owned(),
            reason: "kernel modules are built for arm64 boards only (cross-built on an amd64 \
                     host)"
                .into(),
        });
    }
    let name = module_name(source)?;
    let keyed = Keyed::new(options(req), &[])?;
    let root = req.cache.path(
        "kernel-headers",
        &format!("{}-{}", req.kernel.release, &keyed.key[..16]),
    );
    let what = format!("the headers of kernel {}", req.kernel.release);
    let root = keyed.ensure(&root, req.refresh, &what)?;

    let work = tempfile::Builder::new()
        .prefix(".d3kos-module-")
        .tempdir()
        .map_err(io(Path::new("/tmp")))?;
    let dir: PathBuf = work.path().to_owned();
    let c = dir.join(format!("{name}.c"));
    std::fs::copy(source, &c).map_err(io(source))?;
    let kbuild = dir.join("Kbuild");
    std::fs::write(&kbuild, format!("obj-m := {name}.o\n")).map_err(io(&kbuild))?;
    let t = triplet(req.arch);
    let make = format!(
        "exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin KBUILD_BUILD_TIMESTAMP=@{epoch} \
         KBUILD_BUILD_USER=d3kos KBUILD_BUILD_HOST=d3kos \
         sh -c 'make -s -C /usr/src/linux-headers-{release} M=/module ARCH={arch} \
         CROSS_COMPILE={t}- CC={t}-gcc modules && {t}-strip --strip-debug /module/{name}.ko'",
        epoch = req.source_date_epoch,
        release = req.kernel.release,
        arch = kernel_arch(req.arch),
    );
    super::chroot::run(
        &root,
        &[Bind {
            host: &dir,
            inside: "/module",
            read_only: false,
        }],
        &make,
        "kernel module",
    )
    .map_err(|source_err| CompileError::Module {
        name: name.clone(),
        kernel: req.kernel.release.clone(),
        source: source_err,
    })?;
    let ko = dir.join(format!("{name}.ko"));
    std::fs::read(&ko).map_err(io(&ko))
}

/// A module's name is its file's stem, which must be a C identifier (the kernel's rule).
pub fn module_name(source: &Path) -> Result<String, CompileError> {
    let stem = source
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".c"))
        .filter(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    stem.map(str::to_owned)
        .ok_or_else(|| CompileError::NotForBoard {
            path: source.to_owned(),
            reason: "a kernel module's source is NAME.c, NAME of ASCII letters, digits and '_'"
                .into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkgs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_kernel_is_the_image_package_with_modules_not_the_metapackage() {
        let p = pkgs(&[
            ("linux-image-6.12.117+deb13-arm64", "6.12.117-1"),
            ("linux-image-arm64", "6.12.117-1"),
            ("linux-base", "4.12"),
        ]);
        let k = Kernel::find(&p, |r| r == "6.12.117+deb13-arm64").unwrap();
        assert_eq!(k.release, "6.12.117+deb13-arm64");
        assert_eq!(k.version, "6.12.117-1");
        assert_eq!(k.common(), "6.12.117+deb13");
        let none = Kernel::find(&p, |_| false).unwrap_err();
        assert!(none.contains("no Debian kernel"), "{none}");
        let two = pkgs(&[
            ("linux-image-6.12.107+deb13-arm64", "6.12.107-1"),
            ("linux-image-6.12.117+deb13-arm64", "6.12.117-1"),
        ]);
        let e = Kernel::find(&two, |_| true).unwrap_err();
        assert!(e.contains("2 kernels"), "{e}");
    }

    #[test]
    fn the_headers_chroot_pins_the_kernel_version_and_unpacks_the_flavour() {
        let cache = Cache {
            dir: "/nonexistent".into(),
        };
        let kernel = Kernel {
            release: "6.12.117+deb13-arm64".into(),
            version: "6.12.117-1".into(),
        };
        let o = options(&ModuleRequest {
            arch: Arch::Arm64,
            kernel: &kernel,
            suite: "trixie",
            mirror: "http://deb.debian.org/debian",
            cache: &cache,
            refresh: false,
            source_date_epoch: 0,
        });
        assert_eq!(o.architectures, ["amd64", "arm64"]);
        assert!(o.packages.contains(&"gcc-aarch64-linux-gnu".to_owned()));
        assert!(
            o.packages
                .contains(&"linux-kbuild-6.12.117+deb13=6.12.117-1".to_owned())
        );
        assert!(
            o.customize_hooks[0]
                .contains("apt-get download linux-headers-6.12.117+deb13-arm64:arm64=6.12.117-1")
        );
    }

    #[test]
    fn a_module_source_is_named_like_a_c_identifier() {
        assert_eq!(
            module_name(Path::new("boards/rpi4/d3kos_tryboot.c")).unwrap(),
            "d3kos_tryboot"
        );
        for bad in ["d3kos-tryboot.c", "tryboot.h", "9lives.c"] {
            let e = module_name(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains("NAME.c"), "{bad}: {e}");
        }
    }
}
