//! COMPRESS (RFC 4978): the command. Once its OK is sent the connection
//! deflates both ways ([`crate::imap::deflate`]) to its end.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;
use imap_codec::imap_types::response::Code;

use crate::backend::MailBackend;
use crate::imap::session::{Done, Session, no, ok};

impl<B: MailBackend> Session<B> {
    pub(crate) fn compress(&mut self, tag: Tag<'static>, algorithm: CompressionAlgorithm) -> Done {
        if self.compressed {
            return Done::now(no(&tag, Some(Code::CompressionActive), "already compressing"));
        }
        match algorithm {
            CompressionAlgorithm::Deflate => {
                self.compressed = true;
                Done::Compress(ok(&tag, None, "DEFLATE active"))
            }
            #[allow(unreachable_patterns)]
            _ => Done::now(no(&tag, None, "only DEFLATE is supported")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::session::tests::{logged_in, run, session};

    #[tokio::test]
    async fn compress_once_after_login() {
        let (mut s, _) = session();
        assert!(run(&mut s, "a COMPRESS DEFLATE").await.starts_with("a BAD"));
        let (mut s, _) = logged_in().await;
        let caps = run(&mut s, "b CAPABILITY").await;
        assert!(caps.contains(" COMPRESS=DEFLATE"), "{caps}");
        assert_eq!(run(&mut s, "c COMPRESS DEFLATE").await, "c OK DEFLATE active\r\n");
        let again = run(&mut s, "d COMPRESS DEFLATE").await;
        assert!(again.starts_with("d NO [COMPRESSIONACTIVE]"), "{again}");
        assert!(!run(&mut s, "e CAPABILITY").await.contains("COMPRESS"));
    }
}
