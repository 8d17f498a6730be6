//! The control-API client the CLI commands use: finds the running node
//! through `node.json` and authenticates with `api.token`.

use anyhow::{Context, Result, bail};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::cmd::node::read_info;
use crate::datadir::DataDir;

pub(crate) struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    pub(crate) fn connect(dir: &DataDir) -> Result<Self> {
        let info = read_info(&dir.node_info_path(), dir.root())?;
        let token = std::fs::read_to_string(dir.api_token_path())
            .with_context(|| format!("cannot read {}", dir.api_token_path().display()))?;
        // Uploads and downloads stream for as long as they need; only
        // connecting is bounded.
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self { http, base: info.api_url, token: token.trim().to_owned() })
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub(crate) async fn send(&self, builder: reqwest::RequestBuilder) -> Result<Response> {
        let response = builder.send().await.with_context(|| {
            format!(
                "the node's control API at {} does not answer; is `epost node run` still running?",
                self.base
            )
        })?;
        check(response).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.send(self.request(reqwest::Method::GET, path)).await?;
        response.json().await.context("the node answered with invalid JSON")
    }

    /// POSTs `body` as JSON and returns the JSON answer.
    pub(crate) async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let response = self.send(self.request(reqwest::Method::POST, path).json(body)).await?;
        response.json().await.context("the node answered with invalid JSON")
    }

    pub(crate) async fn post_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.send(self.request(reqwest::Method::POST, path)).await?;
        response.json().await.context("the node answered with invalid JSON")
    }
}

/// `text` as one URL path segment: everything but unreserved characters
/// (and `@` and `:`, which are allowed in a segment) percent-encoded.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Turns an error status into the node's own message.
async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        error: String,
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ApiError>(&text).map(|e| e.error).unwrap_or(text);
    match status {
        StatusCode::UNAUTHORIZED => bail!("the node refused the API token: {message}"),
        _ => bail!("{message} (HTTP {status})"),
    }
}
