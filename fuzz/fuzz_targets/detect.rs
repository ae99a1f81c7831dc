//! The whole detection engine on arbitrary raw requests (read leniently, as the offline mode
//! does): no panic on any input, whatever it claims about lengths, encodings or nesting.
#![no_main]

use std::sync::Mutex;

use api_guard::{
    detect::{offline::OwnedRequest, DetectConfig, Engine},
    identity::Identifier,
};
use libfuzzer_sys::fuzz_target;

static ENGINE: Mutex<Option<(Engine, u64)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let (engine, now) = guard.get_or_insert_with(|| {
        let engine =
            Engine::new(&DetectConfig::default()).expect("the default configuration is valid");
        (engine, 0)
    });
    *now += 1_000_000;
    let (peer_byte, status) = match data {
        [a, b, ..] => (*a, 100 + u16::from(*b) * 2),
        _ => (0, 200),
    };
    let req = OwnedRequest::from_raw(data);
    let req = req.view(Some([10, 0, 0, peer_byte].into()), Some(status));
    // Identification runs on the same hostile headers, as the agent's parsing task does.
    let client = Identifier::default().identify(req.peer, req.headers, req.query);
    let verdict = engine.inspect(&req, &client, *now);
    for f in &verdict.findings {
        assert!(f.evidence.chars().count() <= api_guard::detect::finding::MAX_EVIDENCE_CHARS + 1);
    }
});
