//! What a connection takes beyond its plain [`Settings`]: the host's own link stores and
//! callbacks, which have no name in the option vocabulary.

use super::store::{DownloadHandler, LinkStore, Progress, UploadHandler};
use crate::protocol::Settings;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct ConnectOptions {
    pub settings: Settings,
    /// A store of the caller's own: asked first for uploads, and for downloads of the URLs it serves.
    pub link_store: Option<Arc<dyn LinkStore>>,
    /// The seeds' `fileserver_upload_handler`: takes every link upload of the connection.
    pub upload_handler: Option<UploadHandler>,
    /// The seeds' `fileserver_download_handler`: fetches the links under `fileserver_url`'s origin
    /// and `allowed_origins`.
    pub download_handler: Option<DownloadHandler>,
    /// Told the bytes moved by every link upload and download (a CLI progress bar).
    pub transfer_progress: Option<Progress>,
}

impl ConnectOptions {
    pub fn with_server(url: &str) -> Self {
        let mut opts = ConnectOptions::default();
        opts.settings.servers.push(url.to_owned());
        opts
    }
}
