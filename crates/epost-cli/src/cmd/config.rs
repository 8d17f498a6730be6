//! `epost config check|show`.

use anyhow::Result;

use crate::cli::ConfigCommand;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::output::emit;

pub(crate) fn run(dir: &DataDir, command: &ConfigCommand, json: bool) -> Result<()> {
    dir.require_initialised()?;
    let path = dir.config_path();
    let config = Config::load(&path)?;
    match command {
        ConfigCommand::Check => {
            #[derive(serde::Serialize)]
            struct Checked {
                config: String,
                valid: bool,
            }
            let checked = Checked { config: path.display().to_string(), valid: true };
            emit(json, &checked, |c| format!("{}: ok", c.config))?;
        }
        ConfigCommand::Show => {
            emit(json, &config, |c| toml::to_string_pretty(c).unwrap_or_else(|e| e.to_string()))?;
        }
    }
    Ok(())
}
