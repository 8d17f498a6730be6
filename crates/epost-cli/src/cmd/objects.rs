//! `epost put`, `get`, `check`, `repair`: objects through the running node.

use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;

use epost_node::control::{
    CheckReport, PutReport, RefreshReport, RenewProgress, RenewReport, RepairReport,
};

use crate::client::ApiClient;
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) async fn put(dir: &DataDir, file: &Path, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let body = if file == Path::new("-") {
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(tokio::io::stdin()))
    } else {
        let handle = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        let progress = progress_bar(handle.metadata().await.ok().map(|m| m.len()));
        let stream = tokio_util::io::ReaderStream::new(handle).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                progress.inc(bytes.len() as u64);
            }
        });
        reqwest::Body::wrap_stream(stream)
    };
    let response =
        client.send(client.request(reqwest::Method::POST, "/v1/objects").body(body)).await?;
    let report: PutReport = response.json().await.context("the node answered with invalid JSON")?;
    emit(json, &report, |r| {
        format!("stored {} bytes in {} object(s)\n{}", r.size, r.objects, r.capability)
    })?;
    Ok(())
}

pub(crate) async fn get(dir: &DataDir, capability: &str, output: Option<&Path>) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let path = format!("/v1/objects/{}", crate::client::path_segment(capability));
    let response = client.send(client.request(reqwest::Method::GET, &path)).await?;
    let progress = progress_bar(None);
    let mut stream = response.bytes_stream();
    // Write to a temporary file and rename at the end, so a failed download
    // never leaves a truncated file under the requested name.
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match output {
        Some(path) => Box::new(
            tokio::fs::File::create(partial(path))
                .await
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context(
            "the download broke off: the object could not be read whole (nothing was written)",
        )?;
        sink.write_all(&chunk).await.context("cannot write the output")?;
        progress.inc(chunk.len() as u64);
    }
    sink.flush().await?;
    drop(sink);
    if let Some(path) = output {
        std::fs::rename(partial(path), path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    progress.finish_and_clear();
    Ok(())
}

/// Shows the redundancy report the API route `path` answers.
pub(crate) async fn check(dir: &DataDir, path: &str, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let report: CheckReport = client.get_json(path).await?;
    emit(json, &report, |r| {
        format!(
            "{} object(s): {}/{} fragments alive, {} needed per object; {}",
            r.objects,
            r.fragments_alive,
            r.fragments_total,
            r.needed,
            if r.readable { "readable" } else { "NOT readable" }
        )
    })?;
    Ok(())
}

pub(crate) async fn refresh(dir: &DataDir, capability: &str, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let report: RefreshReport = client
        .post_json(&format!("/v1/objects/{}/refresh", crate::client::path_segment(capability)))
        .await?;
    emit(json, &report, |r| {
        format!(
            "{} object(s): {} fragment lease(s) extended to {} ms",
            r.objects, r.fragments_extended, r.expires
        )
    })?;
    Ok(())
}

pub(crate) async fn repair(dir: &DataDir, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let report: RepairReport = client.post_json("/v1/repair").await?;
    emit(json, &report, |r| {
        format!(
            "checked {} object(s): {} fragment(s) repaired, {} handed over, {} unrecoverable; {} expired fragment(s) and {} expired record(s) removed",
            r.objects_checked,
            r.fragments_repaired,
            r.fragments_handed_over,
            r.unrecoverable,
            r.expired_removed,
            r.records_expired_removed
        )
    })?;
    Ok(())
}

pub(crate) async fn renew(dir: &DataDir, json: bool) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let report: RenewReport = client.post_json("/v1/renew").await?;
    emit(json, &report, |r| {
        let mut text = format!(
            "renewed {} object(s) of {} root(s), {} not renewed (retried next pass); {} log head(s) republished",
            r.renewed, r.roots, r.failed, r.heads_republished
        );
        if r.lost > 0 {
            text.push_str(&format!("; {} lost (no holder has them)", r.lost));
        }
        text
    })?;
    Ok(())
}

pub(crate) async fn renew_progress(
    dir: &DataDir,
    wait_renewed: Option<u64>,
    timeout: u64,
    json: bool,
) -> Result<()> {
    let client = ApiClient::connect(dir)?;
    let path = match wait_renewed {
        Some(n) => format!("/v1/renew?min_renewed={n}&wait_secs={timeout}"),
        None => "/v1/renew".to_owned(),
    };
    let progress: RenewProgress = client.get_json(&path).await?;
    emit(json, &progress, |p| {
        format!(
            "{}: {} object(s) renewed, {} not; {} pass(es) finished since start",
            if p.running { "a pass is running" } else { "no pass is running" },
            p.renewed,
            p.failed,
            p.passes
        )
    })?;
    Ok(())
}

fn partial(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// A progress bar on a terminal; hidden when stderr is piped.
fn progress_bar(len: Option<u64>) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = len.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    let style =
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
