//! Postfix delivering into Dovecot, as a single mail server is usually
//! set up: Postfix's smtpd on loopback accepts mail for the virtual domain,
//! queues it (fsynced) and hands it over LMTP to Dovecot, which writes it
//! to each user's Maildir; Dovecot's IMAP serves it. Everything lives in a
//! private directory: the system's own mail configuration is not read or
//! touched, and both run in the foreground as children of this process.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::System;

/// How long either may take to start listening.
const START_WAIT: Duration = Duration::from_secs(30);
/// Maildirs are written as this (pre-existing) system user; Dovecot refuses
/// to deliver as root.
const MAIL_USER: &str = "mail";

pub(crate) struct PostfixDovecot {
    dir: PathBuf,
    postfix: Option<Child>,
    dovecot: Option<Child>,
    smtp: SocketAddr,
    imap: SocketAddr,
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before listening on {addr}");
        }
        ensure!(start.elapsed() < START_WAIT, "{what} did not listen on {addr} in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl PostfixDovecot {
    /// Writes the configuration under `dir` for `users` (password
    /// `password`) and starts both.
    pub(crate) fn start(dir: &Path, users: &[String], password: &str) -> Result<Self> {
        for tool in ["postfix", "dovecot"] {
            ensure!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()?
                    .status
                    .success()
                    || Path::new(&format!("/usr/sbin/{tool}")).exists(),
                "{tool} is not installed (tools/compare installs it from Debian's packages)"
            );
        }
        let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let imap: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let d = dir.display();
        for sub in ["postfix", "queue", "data", "mail", "dovecot/base", "dovecot/state"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        run(Command::new("chown").args(["postfix", &format!("{d}/data")]))?;
        run(
            Command::new("chown").args([&format!("{MAIL_USER}:{MAIL_USER}"), &format!("{d}/mail")])
        )?;

        let uid = run_capture("id", &["-u", MAIL_USER])?;
        std::fs::write(
            dir.join("postfix/main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.compare.test
mydomain = compare.test
myorigin = compare.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
virtual_mailbox_domains = example.test
virtual_transport = lmtp:unix:{d}/dovecot/base/lmtp
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = /dev/stdout
biff = no
smtp_dns_support_level = disabled
default_process_limit = 100
lmtp_destination_concurrency_limit = 20
alternate_config_directories = {d}/postfix
"
            ),
        )?;
        // Debian's master.cf with every service out of chroot, smtpd on our port.
        let mut master = format!("{smtp} inet n - n - - smtpd\n");
        for line in [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ] {
            let _ = writeln!(master, "{line}");
        }
        std::fs::write(dir.join("postfix/master.cf"), master)?;

        let mut passwd = String::new();
        for user in users {
            let _ = writeln!(passwd, "{user}:{{PLAIN}}{password}::::::");
        }
        std::fs::write(dir.join("dovecot/users"), passwd)?;
        std::fs::write(
            dir.join("dovecot/dovecot.conf"),
            format!(
                "base_dir = {d}/dovecot/base
state_dir = {d}/dovecot/state
instance_name = compare
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {d}/dovecot/dovecot.log
first_valid_uid = {uid}
mail_uid = {MAIL_USER}
mail_gid = {MAIL_USER}
mail_location = maildir:{d}/mail/%d/%n
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/dovecot/users
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={MAIL_USER} home={d}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
",
                imap_port = imap.port()
            ),
        )?;

        let mut dovecot = Command::new("dovecot")
            .args(["-F", "-c", &format!("{d}/dovecot/dovecot.conf")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start dovecot")?;
        wait_listening(imap, &mut dovecot, "dovecot")?;
        // Postfix logs to its standard output (maillog_file), kept here.
        let log = std::fs::File::create(dir.join("postfix.log"))?;
        let mut postfix = Command::new("postfix")
            .args(["-c", &format!("{d}/postfix"), "start-fg"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start postfix")?;
        if let Err(e) = wait_listening(smtp, &mut postfix, "postfix") {
            let _ = dovecot.kill();
            let log = std::fs::read_to_string(dir.join("postfix.log")).unwrap_or_default();
            bail!("{e}\npostfix log:\n{log}");
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            postfix: Some(postfix),
            dovecot: Some(dovecot),
            smtp,
            imap,
        })
    }
}

fn run_capture(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    ensure!(out.status.success(), "{cmd} {args:?} failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl System for PostfixDovecot {
    fn name(&self) -> &'static str {
        "Postfix+Dovecot"
    }

    fn smtp(&self) -> SocketAddr {
        self.smtp
    }

    fn imap(&self) -> SocketAddr {
        self.imap
    }

    fn pids(&self) -> Vec<u32> {
        self.postfix.iter().chain(&self.dovecot).map(Child::id).collect()
    }

    fn disk_dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.join("queue"), self.dir.join("mail")]
    }

    fn stop(&mut self) -> Result<()> {
        let d = self.dir.display().to_string();
        let _ = Command::new("postfix").args(["-c", &format!("{d}/postfix"), "stop"]).output();
        if let Some(mut child) = self.postfix.take() {
            child.wait()?;
        }
        let _ = Command::new("doveadm")
            .args(["-c", &format!("{d}/dovecot/dovecot.conf"), "stop"])
            .output();
        if let Some(mut child) = self.dovecot.take() {
            if child.try_wait()?.is_none() {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            }
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for PostfixDovecot {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
