//! `d3kosd wifi setup-ap`: whether the setup Wi-Fi runs on this radio now, and its
//! configuration when it does: hostapd for the access point, dnsmasq for addresses and
//! names, systemd-networkd for the interface's own address. Runs as root on every boot
//! once the radio appears, and again when the owner turns the setup Wi-Fi on or off.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ADDRESS, SetupWifi, WifiError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the data partition is mounted (the credentials, Imager's settings).
    #[arg(long, value_name = "DIR", default_value = "/data")]
    pub data: PathBuf,
    /// The radio.
    #[arg(long, value_name = "NAME", default_value = "wlan0")]
    pub interface: String,
    /// Where hostapd's and dnsmasq's configuration is written; their units start only when
    /// it is there (usr/lib/systemd/system/d3kos-setup-wifi-*.service).
    #[arg(long, value_name = "DIR", default_value = "/run/d3kos/setup-wifi")]
    pub run_dir: PathBuf,
    /// systemd-networkd's runtime folder, for the interface's address.
    #[arg(long, value_name = "DIR", default_value = "/run/systemd/network")]
    pub network_dir: PathBuf,
    /// wpa_supplicant's configuration of the boat's own Wi-Fi on the radio.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    )]
    pub client_conf: PathBuf,
}

/// Whether the setup Wi-Fi runs, and why: the line the boot's screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    On(&'static str),
    Off(String),
}

/// The rule. A Pi has one radio: it is either the boat's Wi-Fi client or the setup access
/// point. The access point runs while the boat's Wi-Fi is not set up, so a device nobody
/// has set up yet is always reachable, and whenever the owner turns it on.
pub fn decide(w: Option<&SetupWifi>, client_configured: bool) -> Decision {
    match w {
        None => Decision::Off(
            "its passphrase is not made yet (the appliance makes it when it starts)".into(),
        ),
        Some(w) if w.owner_on => Decision::On("the owner turned it on"),
        Some(_) if !client_configured => Decision::On("the boat's own Wi-Fi is not set up"),
        Some(_) => Decision::Off(
            "the boat's own Wi-Fi is set up; the owner can turn the setup Wi-Fi on in Settings"
                .into(),
        ),
    }
}

/// Whether wpa_supplicant's file for the radio names a network.
pub fn client_configured(conf: &Path) -> bool {
    std::fs::read_to_string(conf).is_ok_and(|t| {
        t.lines()
            .any(|l| l.trim_start().starts_with("network=") && !l.trim_start().starts_with('#'))
    })
}

/// hostapd.conf(5). WPA2 with CCMP: every phone and laptop joins it, and the Pi 4's radio
/// firmware (brcmfmac) runs it as an access point.
pub fn hostapd_conf(
    w: &SetupWifi,
    interface: &str,
    run_dir: &Path,
    country: Option<&str>,
) -> String {
    let mut s = format!(
        "# The d3kOS setup Wi-Fi, written by `d3kosd wifi setup-ap`.\n\
         interface={interface}\n\
         driver=nl80211\n\
         ctrl_interface={ctrl}\n\
         ssid={ssid}\n\
         utf8_ssid=1\n\
         hw_mode=g\n\
         channel=6\n\
         ieee80211n=1\n\
         wmm_enabled=1\n\
         auth_algs=1\n\
         wpa=2\n\
         wpa_key_mgmt=WPA-PSK\n\
         rsn_pairwise=CCMP\n\
         wpa_passphrase={pass}\n",
        ctrl = run_dir.join("hostapd").display(),
        ssid = w.ssid,
        pass = w.passphrase,
    );
    // Channel 6 is allowed everywhere; a country (Imager's regulatory domain) also sets the
    // transmit power the local rules allow, and is announced (802.11d).
    if let Some(cc) = country {
        s.push_str(&format!("country_code={cc}\nieee80211d=1\n"));
    }
    s
}

/// dnsmasq(8)'s configuration: addresses for the access point's clients, and every name
/// answered with the device's address, so `d3kos.local` works from phones without mDNS
/// and a phone's connectivity check lands on the device (a captive portal).
pub fn dnsmasq_conf(interface: &str, run_dir: &Path) -> String {
    let net = ADDRESS.rsplit_once('.').map_or(ADDRESS, |(n, _)| n);
    format!(
        "# The d3kOS setup Wi-Fi's addresses and names, written by `d3kosd wifi setup-ap`.\n\
         interface={interface}\n\
         bind-dynamic\n\
         no-resolv\n\
         no-hosts\n\
         no-poll\n\
         address=/#/{ADDRESS}\n\
         dhcp-range={net}.10,{net}.254,255.255.255.0,12h\n\
         dhcp-option=option:router,{ADDRESS}\n\
         dhcp-option=option:dns-server,{ADDRESS}\n\
         dhcp-authoritative\n\
         dhcp-leasefile={leases}\n\
         pid-file=\n",
        leases = run_dir.join("dnsmasq.leases").display(),
    )
}

/// systemd.network(5) for the radio while it is the access point. Named to sort before
/// etc/systemd/network/25-wireless.network (the client's DHCP), which it replaces.
pub fn network_file(interface: &str) -> String {
    format!(
        "# The d3kOS setup Wi-Fi's own address, written by `d3kosd wifi setup-ap`.\n\
         [Match]\n\
         Name={interface}\n\
         \n\
         [Link]\n\
         RequiredForOnline=no\n\
         \n\
         [Network]\n\
         Address={ADDRESS}/24\n\
         ConfigureWithoutCarrier=yes\n\
         LinkLocalAddressing=no\n\
         IPv6AcceptRA=no\n"
    )
}

pub const NETWORK_FILE: &str = "10-d3kos-setup-wifi.network";

pub fn run(a: &Args, out: &mut dyn Write) -> Result<(), WifiError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WifiError::Io { path, source }
    };
    let (w, unreadable) = match SetupWifi::load(&a.data) {
        Ok(w) => (w, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let client = client_configured(&a.client_conf);
    let decision = match unreadable {
        Some(e) => Decision::Off(format!("its credentials cannot be read ({e})")),
        None => decide(w.as_ref(), client),
    };
    let hostapd = a.run_dir.join("hostapd.conf");
    let dnsmasq = a.run_dir.join("dnsmasq.conf");
    let network = a.network_dir.join(NETWORK_FILE);
    let network_changed = match (&decision, &w) {
        (Decision::On(why), Some(w)) => {
            let country =
                crate::firstboot::imager::Summary::load(&a.data).and_then(|s| s.wifi_country);
            std::fs::create_dir_all(&a.run_dir).map_err(io(&a.run_dir))?;
            let conf = hostapd_conf(w, &a.interface, &a.run_dir, country.as_deref());
            crate::state::write_atomic_mode(&hostapd, conf.as_bytes(), Some(0o600))?;
            let conf = dnsmasq_conf(&a.interface, &a.run_dir);
            crate::state::write_atomic_mode(&dnsmasq, conf.as_bytes(), Some(0o644))?;
            let text = network_file(&a.interface);
            let changed = std::fs::read_to_string(&network).ok().as_deref() != Some(&text);
            if changed {
                crate::state::write_atomic_mode(&network, text.as_bytes(), Some(0o644))?;
            }
            writeln!(
                out,
                "setup Wi-Fi {} is on at http://{ADDRESS} ({why}); its passphrase is in \
                 d3kos-setup-wifi.txt on the config partition",
                w.ssid
            )
            .map_err(io(Path::new("standard output")))?;
            changed
        }
        (decision, _) => {
            for f in [&hostapd, &dnsmasq] {
                remove(f).map_err(io(f))?;
            }
            let changed = remove(&network).map_err(io(&network))?;
            let why = match decision {
                Decision::Off(why) => why.as_str(),
                Decision::On(why) => why,
            };
            writeln!(out, "setup Wi-Fi is off: {why}").map_err(io(Path::new("standard output")))?;
            if client {
                // The radio is the boat's Wi-Fi client (the access point's unit stops the
                // client when it starts, so this is also the way back).
                if let Err(e) = crate::systemd::queue_start(&[format!(
                    "wpa_supplicant@{}.service",
                    a.interface
                )]) {
                    writeln!(out, "the boat's Wi-Fi did not start: {e}")
                        .map_err(io(Path::new("standard output")))?;
                }
            }
            changed
        }
    };
    if network_changed && crate::systemd::booted() {
        networkctl_reload()?;
    }
    Ok(())
}

/// Removes `path`; whether it was there.
fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `networkctl reload`: systemd-networkd reads its folders again and applies what changed.
fn networkctl_reload() -> Result<(), WifiError> {
    log::debug!("running networkctl reload");
    let out = std::process::Command::new("networkctl")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .arg("reload")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| WifiError::Io {
            path: "networkctl".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(WifiError::Io {
            path: "networkctl reload".into(),
            source: std::io::Error::other(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(owner_on: bool) -> SetupWifi {
        SetupWifi {
            ssid: "d3kOS-AB12".into(),
            passphrase: "abcd-efgh-jkmn-pqrs".into(),
            owner_on,
        }
    }

    #[test]
    fn it_runs_while_the_boats_wifi_is_not_set_up_or_the_owner_wants_it() {
        assert!(matches!(
            decide(Some(&creds(false)), false),
            Decision::On(_)
        ));
        assert!(matches!(
            decide(Some(&creds(false)), true),
            Decision::Off(_)
        ));
        assert!(matches!(decide(Some(&creds(true)), true), Decision::On(_)));
        assert!(matches!(decide(None, false), Decision::Off(_)));
    }

    #[test]
    fn a_client_file_counts_only_when_it_names_a_network() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("wpa.conf");
        assert!(!client_configured(&f));
        std::fs::write(&f, "ctrl_interface=/run/wpa_supplicant\n# network={\n").unwrap();
        assert!(!client_configured(&f));
        std::fs::write(&f, "country=DE\nnetwork={\n\tssid=6e6574\n}\n").unwrap();
        assert!(client_configured(&f));
    }

    #[test]
    fn hostapd_gets_the_credentials_and_the_country() {
        let c = hostapd_conf(&creds(false), "wlan0", Path::new("/run/x"), Some("DE"));
        for line in [
            "interface=wlan0\n",
            "ssid=d3kOS-AB12\n",
            "wpa=2\n",
            "wpa_passphrase=abcd-efgh-jkmn-pqrs\n",
            "country_code=DE\n",
            "ctrl_interface=/run/x/hostapd\n",
        ] {
            assert!(c.contains(line), "{line} missing in\n{c}");
        }
        assert!(!hostapd_conf(&creds(false), "wlan0", Path::new("/r"), None).contains("country"));
    }

    /// The step's arguments with every path in `dir`.
    fn args(dir: &Path) -> Args {
        Args {
            data: dir.join("data"),
            interface: "wlan0".into(),
            run_dir: dir.join("run"),
            network_dir: dir.join("network"),
            client_conf: dir.join("wpa.conf"),
        }
    }

    #[test]
    fn on_writes_the_three_files_and_off_takes_them_away() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path());
        creds(false).save(&a.data).unwrap();
        let mut out = Vec::new();
        run(&a, &mut out).unwrap();
        let said = String::from_utf8(out).unwrap();
        assert!(said.contains("setup Wi-Fi d3kOS-AB12 is on"), "{said}");
        let hostapd = a.run_dir.join("hostapd.conf");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&hostapd).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the passphrase is root's only");
        assert!(a.run_dir.join("dnsmasq.conf").exists());
        let net = std::fs::read_to_string(a.network_dir.join(NETWORK_FILE)).unwrap();
        assert!(net.contains("Address=10.42.0.1/24"), "{net}");

        // The boat's Wi-Fi set up (as Imager does): the access point goes.
        std::fs::write(&a.client_conf, "network={\n\tssid=6e6574\n}\n").unwrap();
        let mut out = Vec::new();
        run(&a, &mut out).unwrap();
        let said = String::from_utf8(out).unwrap();
        assert!(
            said.contains("setup Wi-Fi is off: the boat's own Wi-Fi"),
            "{said}"
        );
        assert!(!hostapd.exists() && !a.run_dir.join("dnsmasq.conf").exists());
        assert!(!a.network_dir.join(NETWORK_FILE).exists());
    }

    #[test]
    fn unreadable_credentials_keep_it_off_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path());
        std::fs::create_dir_all(a.data.join("d3kos")).unwrap();
        std::fs::write(SetupWifi::path(&a.data), "{ not json").unwrap();
        let mut out = Vec::new();
        run(&a, &mut out).unwrap();
        let said = String::from_utf8(out).unwrap();
        assert!(
            said.contains("setup Wi-Fi is off: its credentials cannot be read"),
            "{said}"
        );
        assert!(!a.run_dir.join("hostapd.conf").exists());
    }
}
