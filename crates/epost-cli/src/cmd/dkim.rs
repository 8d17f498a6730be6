//! `epost realm dkim DOMAIN`: the realm's DKIM keys in this data
//! directory (made if missing) and the DNS records that publish them.
//! Works on the files, running node or not; a running node reads its
//! keys at start, so it is restarted to sign with new ones.

use anyhow::{Context, Result};
use epost_mta::dkim::{DnsRecord, keys};
use epost_types::time::Timestamp;
use serde::Serialize;

use crate::datadir::DataDir;
use crate::output::emit;

#[derive(Debug, Serialize)]
struct DkimInfo {
    domain: String,
    /// Keys were made by this call (else they existed).
    created: bool,
    /// Where the key files are.
    dir: String,
    records: Vec<DnsRecord>,
}

pub(crate) fn run(dir: &DataDir, domain: &str, json: bool) -> Result<()> {
    dir.require_initialised()?;
    let (keys, created) = keys::ensure(dir.root(), domain, Timestamp::now())
        .with_context(|| format!("cannot set up the DKIM keys of {domain}"))?;
    let info = DkimInfo {
        domain: keys.domain().to_owned(),
        created,
        dir: keys::dkim_dir(dir.root()).join(keys.domain()).display().to_string(),
        records: keys.records(),
    };
    emit(json, &info, |i| {
        let verb = if i.created {
            "made; restart the node to sign with them, and copy the directory (files mode 0600) to the realm's other nodes that send mail"
        } else {
            "exist"
        };
        let mut text =
            format!("DKIM keys of {} in {} {verb}.\nPublish these DNS records:\n", i.domain, i.dir);
        for record in &i.records {
            text.push_str(&record.zone);
            text.push('\n');
        }
        text.trim_end().to_owned()
    })?;
    Ok(())
}
