//! The bytes each message of `/epost/frag/1` and `/epost/notify/1` has on
//! the wire, pinned: nodes of every version must keep understanding each
//! other, so a change to the framing, the CBOR or a message's serde shape
//! breaks this test before it breaks the network.

use std::fmt::Debug;

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use serde_bytes::ByteBuf;

use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};

use crate::frag::{FRAG_PROTOCOL, Frag};
use crate::notify::{NOTIFY_PROTOCOL, Notify};
use crate::protocol::Codec as ProtocolCodec;

const ID: [u8; 32] = [7; 32];
/// `ID` as CBOR: an array of 32 small integers.
const ID_CBOR: &str = "98200707070707070707070707070707070707070707070707070707070707070707";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Each request and response writes exactly its frame and reads back from it.
fn check<C>(
    mut codec: C,
    protocol: &StreamProtocol,
    requests: Vec<(C::Request, String)>,
    responses: Vec<(C::Response, String)>,
) where
    C: Codec<Protocol = StreamProtocol>,
    C::Request: Clone + PartialEq + Debug,
    C::Response: Clone + PartialEq + Debug,
{
    for (request, frame) in requests {
        let mut written = Cursor::new(Vec::new());
        block_on(codec.write_request(protocol, &mut written, request.clone())).unwrap();
        assert_eq!(hex(&written.into_inner()), frame, "{request:?}");
        let read = block_on(codec.read_request(protocol, &mut Cursor::new(unhex(&frame))));
        assert_eq!(read.unwrap(), request);
    }
    for (response, frame) in responses {
        let mut written = Cursor::new(Vec::new());
        block_on(codec.write_response(protocol, &mut written, response.clone())).unwrap();
        assert_eq!(hex(&written.into_inner()), frame, "{response:?}");
        let read = block_on(codec.read_response(protocol, &mut Cursor::new(unhex(&frame))));
        assert_eq!(read.unwrap(), response);
    }
}

fn refused_frag(reason: RefusalReason, detail: &str) -> FragResponse {
    FragResponse::Refused { reason, detail: detail.into() }
}

fn refused_notify(reason: NotifyRefusal, detail: &str) -> NotifyResponse {
    NotifyResponse::Refused { reason, detail: detail.into() }
}

#[test]
fn frag_frames_are_unchanged() {
    let requests = vec![
        (
            FragRequest::Store {
                fragments: vec![ByteBuf::from(vec![1, 2, 3])],
                expires: 1_700_000_000_000,
            },
            "00000031a261760164626f6479a16553746f7265a269667261676d656e7473814301020367657870697265731b0000018bcfe56800".to_owned(),
        ),
        (
            FragRequest::Fetch { object: ID, index: 3 },
            format!("00000041a261760164626f6479a1654665746368a2666f626a656374{ID_CBOR}65696e64657803"),
        ),
        (
            FragRequest::Probe { objects: vec![ID] },
            format!("0000003ca261760164626f6479a16550726f6265a1676f626a6563747381{ID_CBOR}"),
        ),
        (
            FragRequest::Extend { objects: vec![ID], expires: 5 },
            format!("00000046a261760164626f6479a166457874656e64a2676f626a6563747381{ID_CBOR}676578706972657305"),
        ),
        (
            FragRequest::Renew { objects: vec![ID], expires: 6 },
            format!("00000045a261760164626f6479a16552656e6577a2676f626a6563747381{ID_CBOR}676578706972657306"),
        ),
    ];
    let responses = vec![
        (FragResponse::Stored, "00000010a261760164626f64796653746f726564".to_owned()),
        (
            FragResponse::Fragment(ByteBuf::from(vec![9, 9])),
            "00000016a261760164626f6479a168467261676d656e74420909".to_owned(),
        ),
        (FragResponse::NotFound, "00000012a261760164626f6479684e6f74466f756e64".to_owned()),
        (
            FragResponse::Held(vec![vec![0, 5], vec![]]),
            "00000014a261760164626f6479a16448656c648282000580".to_owned(),
        ),
        (
            FragResponse::Extended(300),
            "00000016a261760164626f6479a168457874656e64656419012c".to_owned(),
        ),
        (
            FragResponse::Renewed(vec![vec![1]]),
            "00000015a261760164626f6479a16752656e65776564818101".to_owned(),
        ),
        (
            refused_frag(RefusalReason::BadFragment, "x"),
            "0000002fa261760164626f6479a16752656675736564a266726561736f6e6b426164467261676d656e746664657461696c6178".to_owned(),
        ),
        (
            refused_frag(RefusalReason::NoSpace, ""),
            "0000002aa261760164626f6479a16752656675736564a266726561736f6e674e6f53706163656664657461696c60".to_owned(),
        ),
        (
            refused_frag(RefusalReason::Busy, ""),
            "00000027a261760164626f6479a16752656675736564a266726561736f6e64427573796664657461696c60".to_owned(),
        ),
        (
            refused_frag(RefusalReason::Internal, ""),
            "0000002ba261760164626f6479a16752656675736564a266726561736f6e68496e7465726e616c6664657461696c60".to_owned(),
        ),
        (
            refused_frag(RefusalReason::OverQuota, ""),
            "0000002ca261760164626f6479a16752656675736564a266726561736f6e694f76657251756f74616664657461696c60".to_owned(),
        ),
    ];
    check(ProtocolCodec::<Frag>::default(), &FRAG_PROTOCOL, requests, responses);
}

#[test]
fn notify_frames_are_unchanged() {
    let requests = vec![
        (
            NotifyRequest::Deliver { notifications: vec![ByteBuf::from(vec![1, 2])] },
            "00000025a261760164626f6479a16744656c69766572a16d6e6f74696669636174696f6e7381420102"
                .to_owned(),
        ),
        (
            NotifyRequest::Receipt { receipt: ByteBuf::from(vec![3]) },
            "0000001da261760164626f6479a16752656365697074a167726563656970744103".to_owned(),
        ),
        (
            NotifyRequest::Pull { inbox: ID, auth: ByteBuf::from(vec![4]) },
            format!("0000003fa261760164626f6479a16450756c6ca265696e626f78{ID_CBOR}64617574684104"),
        ),
    ];
    let responses = vec![
        (
            NotifyResponse::Accepted { ids: vec![ID] },
            format!("0000003ba261760164626f6479a1684163636570746564a16369647381{ID_CBOR}"),
        ),
        (NotifyResponse::Done, "0000000ea261760164626f647964446f6e65".to_owned()),
        (
            NotifyResponse::Pending { notifications: vec![ByteBuf::from(vec![5])] },
            "00000024a261760164626f6479a16750656e64696e67a16d6e6f74696669636174696f6e73814105".to_owned(),
        ),
        (
            refused_notify(NotifyRefusal::Malformed, "y"),
            "0000002da261760164626f6479a16752656675736564a266726561736f6e694d616c666f726d65646664657461696c6179".to_owned(),
        ),
        (
            refused_notify(NotifyRefusal::RateLimited, ""),
            "0000002ea261760164626f6479a16752656675736564a266726561736f6e6b526174654c696d697465646664657461696c60".to_owned(),
        ),
        (
            refused_notify(NotifyRefusal::Full, ""),
            "00000027a261760164626f6479a16752656675736564a266726561736f6e6446756c6c6664657461696c60".to_owned(),
        ),
        (
            refused_notify(NotifyRefusal::Unauthorized, ""),
            "0000002fa261760164626f6479a16752656675736564a266726561736f6e6c556e617574686f72697a65646664657461696c60".to_owned(),
        ),
        (
            refused_notify(NotifyRefusal::Internal, ""),
            "0000002ba261760164626f6479a16752656675736564a266726561736f6e68496e7465726e616c6664657461696c60".to_owned(),
        ),
    ];
    check(ProtocolCodec::<Notify>::default(), &NOTIFY_PROTOCOL, requests, responses);
}
