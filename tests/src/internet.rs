//! The internet, built inside a test: a DNS server on loopback (dnsmasq)
//! serving the zones a test writes, and a real Postfix as the MX of
//! another domain, with a Maildir per user. Both run from a private
//! directory as children of the test and end with it; `.ci/run` installs
//! them from Debian's packages.
//!
//! Postfix needs root (it runs its daemons as its own user); dnsmasq does
//! not. Each server takes a port found free just before it starts (neither
//! can report a port 0 it was given), and a start that loses that race is
//! retried on another.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// How long a server may take to start answering.
const START: Duration = Duration::from_secs(30);

/// DNS records of one test's internet.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    lines: Vec<String>,
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    /// `domain MX preference host`.
    pub fn mx(mut self, domain: &str, host: &str, preference: u16) -> Self {
        self.lines.push(format!("mx-host={domain},{host},{preference}"));
        self
    }

    /// `name A ip` (or AAAA for an IPv6 address).
    pub fn a(mut self, name: &str, ip: &str) -> Self {
        self.lines.push(format!("host-record={name},{ip}"));
        self
    }

    /// `name TXT ...`: one record of the given strings (each at most 255
    /// bytes; a longer text is split as RFC 7208 and RFC 6376 allow).
    pub fn txt(mut self, name: &str, text: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let cut = floor_char_boundary(rest, 255);
            let (part, tail) = rest.split_at(cut);
            parts.push(format!("\"{}\"", part.replace('\\', "\\\\").replace('"', "\\\"")));
            rest = tail;
        }
        self.lines.push(format!("txt-record={name},{}", parts.join(",")));
        self
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// dnsmasq answering for the zone and nothing else (no upstream, no
/// /etc/hosts), on 127.0.0.1.
pub struct Dns {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Dns {
    pub fn start(dir: &Path, zone: &Zone) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut last = None;
        for _ in 0..5 {
            match Self::start_on(dir, free_udp_port()?, zone) {
                Ok(dns) => return Ok(dns),
                Err(e) => last = Some(e),
            }
        }
        bail!("dnsmasq did not start: {last:?}")
    }

    /// Serves `zone` instead, on the same port (dnsmasq reads its records
    /// only at start).
    pub fn serve(&mut self, zone: &Zone) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.dir.clone();
        *self = Self::start_on(&dir, self.addr.port(), zone)?;
        Ok(())
    }

    fn start_on(dir: &Path, port: u16, zone: &Zone) -> Result<Self> {
        let bin = which("dnsmasq")?;
        {
            let conf = dir.join("dnsmasq.conf");
            let mut text = format!(
                "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
                 no-poll\nno-negcache\nlog-queries\npid-file=\nlocal=/test/\n"
            );
            for line in &zone.lines {
                let _ = writeln!(text, "{line}");
            }
            std::fs::write(&conf, text)?;
            let log = std::fs::File::create(dir.join("dnsmasq.log"))?;
            let mut child = Command::new(&bin)
                .args(["--keep-in-foreground", "--log-facility=-"])
                .arg(format!("--conf-file={}", conf.display()))
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start dnsmasq")?;
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            match wait_dns(addr, &mut child) {
                Ok(()) => Ok(Self { addr, dir: dir.to_path_buf(), child }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default();
                    bail!("{e}\n{log}")
                }
            }
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `server` for the A record of a name that need not exist: any
/// answer (NXDOMAIN included) means it serves.
fn wait_dns(server: SocketAddr, child: &mut Child) -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    // id 0x1234, recursion desired, one question: probe.test A IN.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["probe", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let deadline = Instant::now() + START;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("dnsmasq exited: {status}");
        }
        socket.send_to(&query, server)?;
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && n >= 2
            && buf[..2] == [0x12, 0x34]
        {
            return Ok(());
        }
    }
    bail!("dnsmasq did not answer on {server}")
}

/// A private Postfix: the MX of `domain`, keeping mail for its users in
/// Maildirs, and relaying mail for other domains to fixed next hops (an
/// epost MX), as a real remote mail system would after its own MX lookup.
pub struct Postfix {
    pub smtp: SocketAddr,
    pub domain: String,
    config: PostfixConfig,
    dir: PathBuf,
    child: Option<Child>,
}

/// What a test's Postfix serves.
#[derive(Debug, Clone)]
pub struct PostfixConfig {
    /// The mail domain it is the MX of.
    pub domain: String,
    /// Its users' local parts.
    pub users: Vec<String>,
    /// Domain -> "host:port" it relays to (no DNS).
    pub relay: Vec<(String, SocketAddr)>,
    /// Extra main.cf lines (e.g. an `smtpd_recipient_restrictions` that
    /// refuses a user).
    pub extra: Vec<String>,
}

impl Postfix {
    pub fn start(dir: &Path, config: &PostfixConfig) -> Result<Self> {
        ensure!(
            is_root(),
            "the Postfix of this test runs its daemons as the postfix user, which needs root"
        );
        which("postfix")?;
        let d = dir.display().to_string();
        for sub in ["etc", "queue", "data", "mail"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        run(Command::new("chown").args(["postfix", &format!("{d}/data")]))?;
        // The virtual delivery agent writes the Maildirs as this user.
        run(Command::new("chown").args(["-R", "nobody:nogroup", &format!("{d}/mail")]))?;
        let mut last = None;
        for _ in 0..5 {
            let mut postfix = Self {
                smtp: format!("127.0.0.1:{}", free_tcp_port()?).parse()?,
                domain: config.domain.clone(),
                config: config.clone(),
                dir: dir.to_path_buf(),
                child: None,
            };
            postfix.write_config()?;
            match postfix.restart() {
                Ok(()) => return Ok(postfix),
                Err(e) => last = Some(e),
            }
        }
        bail!("postfix did not start: {last:?}\n{}", self_log(dir))
    }

    /// From now on, relays mail for `domain` to `next_hop`.
    pub fn relay_to(&mut self, domain: &str, next_hop: SocketAddr) -> Result<()> {
        self.config.relay.retain(|(d, _)| d != domain);
        self.config.relay.push((domain.to_owned(), next_hop));
        self.write_config()?;
        run(Command::new("postfix").args(["-c", &self.etc(), "reload"]))
    }

    fn etc(&self) -> String {
        self.dir.join("etc").display().to_string()
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.display();
        let uid = capture("id", &["-u", "nobody"])?;
        let gid = capture("id", &["-g", "nobody"])?;
        let domain = &self.config.domain;
        let mailboxes: Vec<String> =
            self.config.users.iter().map(|u| format!("{u}@{domain}={domain}/{u}/")).collect();
        let transports: Vec<String> = self
            .config
            .relay
            .iter()
            .map(|(dom, addr)| format!("{dom}=smtp:[{}]:{}", addr.ip(), addr.port()))
            .collect();
        let relay_domains: Vec<&str> = self.config.relay.iter().map(|(d, _)| d.as_str()).collect();
        // An empty inline table is an error to Postfix.
        let transport_maps = if transports.is_empty() {
            String::new()
        } else {
            format!("transport_maps = inline:{{ {} }}\n", transports.join(", "))
        };
        let mut main = format!(
            "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {relay}
{transport_maps}virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = inline:{{ {mailboxes} }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = /dev/stdout
biff = no
smtp_dns_support_level = disabled
smtp_tls_security_level = none
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
alternate_config_directories = {d}/etc
",
            relay = relay_domains.join(", "),
            mailboxes = mailboxes.join(", "),
        );
        for line in &self.config.extra {
            let _ = writeln!(main, "{line}");
        }
        std::fs::write(self.dir.join("etc/main.cf"), main)?;
        let mut master = format!("{} inet n - n - - smtpd\n", self.smtp);
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
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ] {
            let _ = writeln!(master, "{line}");
        }
        std::fs::write(self.dir.join("etc/master.cf"), master)?;
        Ok(())
    }

    /// The messages delivered to `user` so far (the files of its Maildir's
    /// `new/` and `cur/`), oldest first.
    pub fn maildir(&self, user: &str) -> Result<Vec<Vec<u8>>> {
        let base = self.dir.join("mail").join(&self.domain).join(user);
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(base.join(sub)) else { continue };
            for entry in entries {
                let entry = entry?;
                files.push((entry.metadata()?.modified()?, entry.path()));
            }
        }
        files.sort();
        files.into_iter().map(|(_, p)| Ok(std::fs::read(p)?)).collect()
    }

    /// Waits (bounded) until `user` has at least `n` messages.
    pub fn wait_for(&self, user: &str, n: usize, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.maildir(user)?;
            if got.len() >= n {
                return Ok(got);
            }
            if Instant::now() > deadline {
                bail!(
                    "{user}@{} has {} of {n} messages after {timeout:?}\npostfix log:\n{}",
                    self.domain,
                    got.len(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (bounded) until Postfix's own queue is empty: everything it
    /// accepted has been delivered or bounced. Postfix announces this to
    /// nobody, so its queue listing is read until it says so.
    pub fn settled(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = Command::new("postqueue").args(["-c", &self.etc(), "-j"]).output()?;
            ensure!(out.status.success(), "postqueue: {}", String::from_utf8_lossy(&out.stderr));
            if out.stdout.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Postfix still holds {} after {timeout:?}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What Postfix logged.
    pub fn log(&self) -> String {
        self_log(&self.dir)
    }

    /// Stops it (the remote MX "down"); [`Postfix::restart`] brings it back
    /// on the same port with the same queue.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let said = Command::new("postfix").args(["-c", &self.etc(), "stop"]).output()?;
        let deadline = Instant::now() + START;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                // Its master first (the script waits for it), then the script.
                if let Ok(pid) = std::fs::read_to_string(self.dir.join("queue/pid/master.pid")) {
                    let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                }
                let _ = child.kill();
                child.wait()?;
                bail!(
                    "postfix did not stop in {START:?} and was killed; `postfix stop` said: {}{}",
                    String::from_utf8_lossy(&said.stdout),
                    String::from_utf8_lossy(&said.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn restart(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "postfix is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postfix.log"))?;
        let mut child = Command::new("postfix")
            .args(["-c", &self.etc(), "start-fg"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start postfix")?;
        if let Err(e) = wait_smtp(self.smtp, &mut child) {
            let _ = Command::new("postfix").args(["-c", &self.etc(), "stop"]).output();
            let _ = child.wait();
            return Err(e);
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("{e}");
        }
    }
}

fn self_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("postfix.log")).unwrap_or_default()
}

/// Waits until `addr` greets with `220`.
fn wait_smtp(addr: SocketAddr, child: &mut Child) -> Result<()> {
    use std::io::Read;
    let deadline = Instant::now() + START;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited: {status}");
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = [0u8; 3];
            if stream.read_exact(&mut buf).is_ok() && &buf == b"220" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing greets on {addr}")
}

pub fn is_root() -> bool {
    capture("id", &["-u"]).is_ok_and(|uid| uid == "0")
}

fn which(tool: &str) -> Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(tool);
        if path.exists() {
            return Ok(path);
        }
    }
    bail!("{tool} is not installed (.ci/run installs it from Debian's packages)")
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output()?;
    ensure!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn capture(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    ensure!(out.status.success(), "{cmd} {args:?} failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
