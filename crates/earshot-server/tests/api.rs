//! The HTTP contract, exercised from outside over real sockets, against
//! the embedded store and a real redis-server alike.

mod common;

use std::collections::BTreeSet;

use common::{expect_error, Backend, TestApp, ACME, GLOBEX};
use serde_json::{json, Value};

async fn session_lifecycle(b: Backend) {
    let app = TestApp::start(b).await;
    let r = app
        .post(ACME, "/v1/sessions")
        .json(&json!({"session_id": "call-1", "language": "en-GB", "metadata": {"agent": "ana"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["session_id"], "call-1");
    assert_eq!(s["tenant_id"], "acme");
    assert_eq!(s["language"], "en-GB");
    assert_eq!(s["status"], "active");
    assert_eq!(s["segment_count"], 0);
    assert_eq!(s["metadata"]["agent"], "ana");
    assert!(s["completed_at"].is_null());
    assert!(s["started_at"].as_str().unwrap().ends_with('Z'));

    // Same id again: 409, in any tenant.
    let again = app
        .post(ACME, "/v1/sessions")
        .json(&json!({"session_id": "call-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(again, 409).await, "session_exists");
    let other = app
        .post(GLOBEX, "/v1/sessions")
        .json(&json!({"session_id": "call-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 409);

    assert_eq!(app.append(ACME, "call-1", "  hello there ").await, 0);
    assert_eq!(app.append(ACME, "call-1", "general kenobi").await, 1);

    let got: Value = app
        .get(ACME, "/v1/sessions/call-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["segment_count"], 2);

    let done: Value = app
        .post(ACME, "/v1/sessions/call-1/complete")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["transcript"], "hello there general kenobi");
    assert!(done["completed_at"].as_str().is_some());

    let late = app
        .post(ACME, "/v1/sessions/call-1/segments")
        .json(&json!({"text": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(late, 409).await, "session_completed");

    let t: Value = app
        .get(ACME, "/v1/sessions/call-1/transcript")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["text"], "hello there general kenobi");
    assert_eq!(t["segments"][1]["seq"], 1);
    assert_eq!(t["segments"][0]["text"], "hello there");

    // A session created without a body gets a random id and the defaults.
    let r = app.post(ACME, "/v1/sessions").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["session_id"].as_str().unwrap().len(), 32);
    assert_eq!(s["language"], "en-US");

    let kinds: Vec<String> = app
        .events()
        .await
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "session_started",
            "transcript_segment",
            "transcript_segment",
            "transcript_completed",
            "session_started"
        ]
    );
}

async fn seq_is_gap_free_under_concurrent_appends(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "busy").await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (client, url) = (app.client.clone(), app.url("/v1/sessions/busy/segments"));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(ACME)
                .json(&json!({"text": format!("w{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["seq"].as_u64().unwrap()
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        assert!(seqs.insert(t.await.unwrap()), "duplicate seq");
    }
    assert_eq!(seqs, (0..60).collect());
    let t: Value = app
        .get(ACME, "/v1/sessions/busy/transcript")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let segs = t["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 60);
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s["seq"], i as u64, "segments are stored in seq order");
    }
}

async fn complete_is_idempotent_with_one_event(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "c").await;
    app.append(ACME, "c", "one").await;
    app.append(ACME, "c", "two").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (client, url) = (app.client.clone(), app.url("/v1/sessions/c/complete"));
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(ACME).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    for b in &bodies {
        assert_eq!(b["transcript"], "one two");
        assert_eq!(b["completed_at"], bodies[0]["completed_at"]);
    }
    let completed: Vec<Value> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e["event_type"] == "transcript_completed")
        .collect();
    assert_eq!(completed.len(), 1, "exactly one transcript_completed");
    assert_eq!(completed[0]["transcript"], "one two");
    assert_eq!(completed[0]["segment_count"], 2);
}

async fn tenants_never_see_each_other(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "secret").await;
    app.append(ACME, "secret", "acme only").await;
    for (method, path) in [
        ("GET", "/v1/sessions/secret"),
        ("GET", "/v1/sessions/secret/transcript"),
        ("POST", "/v1/sessions/secret/complete"),
        ("DELETE", "/v1/sessions/secret"),
    ] {
        let req = match method {
            "GET" => app.get(GLOBEX, path),
            "POST" => app.post(GLOBEX, path),
            _ => app.delete(GLOBEX, path),
        };
        assert_eq!(
            expect_error(req.send().await.unwrap(), 404).await,
            "session_not_found",
            "{method} {path}"
        );
    }
    let seg = app
        .post(GLOBEX, "/v1/sessions/secret/segments")
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(seg, 404).await;
    let list: Value = app
        .get(GLOBEX, "/v1/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0);
    // Nothing the foreign tenant tried changed the session.
    let s: Value = app
        .get(ACME, "/v1/sessions/secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["segment_count"], 1);
    assert_eq!(s["status"], "active");
}

async fn transcript_formats(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "f").await;
    for (text, a, z) in [("first line", 0, 1500), ("second line", 1500, 3250)] {
        let r = app
            .post(ACME, "/v1/sessions/f/segments")
            .json(&json!({"text": text, "start_ms": a, "end_ms": z}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let txt = app
        .get(ACME, "/v1/sessions/f/transcript?format=txt")
        .send()
        .await
        .unwrap();
    assert!(txt.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(txt.text().await.unwrap(), "first line second line");
    let srt = app
        .get(ACME, "/v1/sessions/f/transcript?format=srt")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        srt,
        "1\n00:00:00,000 --> 00:00:01,500\nfirst line\n\n2\n00:00:01,500 --> 00:00:03,250\nsecond line\n\n"
    );
    let vtt = app
        .get(ACME, "/v1/sessions/f/transcript?format=vtt")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nfirst line"));
    let bad = app
        .get(ACME, "/v1/sessions/f/transcript?format=pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(bad, 400).await, "invalid_format");
}

async fn listing_pages_newest_first(b: Backend) {
    let app = TestApp::start(b).await;
    for i in 0..7 {
        app.create(ACME, &format!("s{i}")).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    app.create(GLOBEX, "g0").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sessions?limit=3&cursor={}", urlencode(c)),
            None => "/v1/sessions?limit=3".to_owned(),
        };
        let page: Value = app
            .get(ACME, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<String> = page["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 3);
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
    for bad in [
        "/v1/sessions?limit=0",
        "/v1/sessions?limit=201",
        "/v1/sessions?limit=x",
        "/v1/sessions?cursor=garbage!!",
    ] {
        let r = app.get(ACME, bad).send().await.unwrap();
        expect_error(r, 400).await;
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn delete_removes_everything(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "gone").await;
    app.append(ACME, "gone", "bye").await;
    let r = app.delete(ACME, "/v1/sessions/gone").send().await.unwrap();
    assert_eq!(r.status(), 204);
    expect_error(
        app.get(ACME, "/v1/sessions/gone").send().await.unwrap(),
        404,
    )
    .await;
    expect_error(
        app.get(ACME, "/v1/sessions/gone/transcript")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_error(
        app.delete(ACME, "/v1/sessions/gone").send().await.unwrap(),
        404,
    )
    .await;
    let events = app.events().await;
    assert_eq!(events.last().unwrap()["event_type"], "session_deleted");
    // The id can be used again.
    app.create(ACME, "gone").await;
}

async fn bad_input_gets_clear_errors(b: Backend) {
    let app = TestApp::start(b).await;
    app.create(ACME, "ok").await;
    let seg = "/v1/sessions/ok/segments";
    let raw = |body: &'static str| {
        app.post(ACME, seg)
            .header("content-type", "application/json")
            .body(body)
    };
    assert_eq!(
        expect_error(raw("{not json").send().await.unwrap(), 400).await,
        "malformed_json"
    );
    assert_eq!(
        expect_error(raw("").send().await.unwrap(), 400).await,
        "malformed_json"
    );
    expect_error(raw(r#"{"text": 5}"#).send().await.unwrap(), 422).await;
    expect_error(
        raw(r#"{"text": "x", "start_ms": "soon"}"#)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    expect_error(raw(r#"{"text": "   "}"#).send().await.unwrap(), 422).await;
    expect_error(raw(r#"[1,2]"#).send().await.unwrap(), 422).await;
    let big = json!({"text": "x".repeat(200_000)});
    expect_error(app.post(ACME, seg).json(&big).send().await.unwrap(), 413).await;
    let too_long = json!({"text": "x".repeat(65_537)});
    expect_error(
        app.post(ACME, seg).json(&too_long).send().await.unwrap(),
        422,
    )
    .await;

    // Hostile ids never reach the store.
    for id in [
        "..",
        "%2E%2E",
        "a%2Fb",
        &"a".repeat(65),
        "%C3%A9t%C3%A9",
        "a%20b",
        "x%00y",
    ] {
        let r = app
            .get(ACME, &format!("/v1/sessions/{id}"))
            .send()
            .await
            .unwrap();
        expect_error(r, 404).await;
        let r = app
            .post(ACME, &format!("/v1/sessions/{id}/segments"))
            .json(&json!({"text": "x"}))
            .send()
            .await
            .unwrap();
        assert!(matches!(r.status().as_u16(), 404), "{id}: {}", r.status());
    }
    for id in ["..", "a/b", "", "é", &"a".repeat(65)] {
        let r = app
            .post(ACME, "/v1/sessions")
            .json(&json!({"session_id": id}))
            .send()
            .await
            .unwrap();
        expect_error(r, 422).await;
    }
    expect_error(
        app.post(ACME, "/v1/sessions")
            .json(&json!({"metadata": {"k": 5}}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    expect_error(
        app.post(ACME, "/v1/sessions")
            .json(&json!({"language": "x y"}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;

    // Keys.
    let none = app
        .client
        .get(app.url("/v1/sessions/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(none, 401).await, "unauthorized");
    let wrong = app
        .get("nope-nope-nope", "/v1/sessions/ok")
        .send()
        .await
        .unwrap();
    expect_error(wrong, 401).await;
    let basic = app
        .client
        .get(app.url("/v1/sessions/ok"))
        .header("authorization", format!("Basic {ACME}"))
        .send()
        .await
        .unwrap();
    expect_error(basic, 401).await;

    // Unknown routes and methods still answer JSON.
    expect_error(app.get(ACME, "/v1/nothing").send().await.unwrap(), 404).await;
    expect_error(
        app.client
            .put(app.url("/v1/sessions/ok"))
            .bearer_auth(ACME)
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;

    // Nothing above damaged the session.
    let s: Value = app
        .get(ACME, "/v1/sessions/ok")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["segment_count"], 0);
    assert_eq!(app.append(ACME, "ok", "still fine").await, 0);
}

async fn health_ready_and_metrics(b: Backend) {
    let app = TestApp::start(b).await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.create(ACME, "m").await;
    app.append(ACME, "m", "x").await;
    let text = app.metrics().await;
    for name in [
        "earshot_http_requests_total",
        "earshot_http_request_duration_seconds_bucket",
        "earshot_redis_command_duration_seconds_bucket",
        "earshot_redis_pool_in_use",
        "earshot_active_streams",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    assert!(
        text.contains(r#"route="/v1/sessions/{id}/segments""#),
        "routes are labelled by template"
    );
}

async fn sse_streams_own_tenant_and_resumes(b: Backend) {
    let app = TestApp::start(b).await;
    let resp = app.get(ACME, "/v1/events").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut sse = common_sse::SseReader::new(resp);
    app.create(GLOBEX, "theirs").await;
    app.create(ACME, "mine").await;
    app.append(ACME, "mine", "hello").await;
    let first = sse.next_event().await;
    assert_eq!(first.event, "session_started");
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(
        data["session_id"], "mine",
        "the other tenant's event is not delivered"
    );
    let second = sse.next_event().await;
    assert_eq!(second.event, "transcript_segment");
    let seg: Value = serde_json::from_str(&second.data).unwrap();
    assert_eq!(seg["seq"], 0);
    assert_eq!(seg["text"], "hello");
    drop(sse);

    // Events published while disconnected are replayed after Last-Event-ID.
    app.append(ACME, "mine", "while away").await;
    app.post(ACME, "/v1/sessions/mine/complete")
        .send()
        .await
        .unwrap();
    let resp = app
        .get(ACME, "/v1/events")
        .header("Last-Event-ID", first.id.clone())
        .send()
        .await
        .unwrap();
    let mut sse = common_sse::SseReader::new(resp);
    let replay: Vec<String> = [
        sse.next_event().await,
        sse.next_event().await,
        sse.next_event().await,
    ]
    .iter()
    .map(|e| e.event.clone())
    .collect();
    assert_eq!(
        replay,
        [
            "transcript_segment",
            "transcript_segment",
            "transcript_completed"
        ]
    );
    // And ?since= works the same.
    let resp = app
        .get(ACME, &format!("/v1/events?since={}", second.id))
        .send()
        .await
        .unwrap();
    let mut sse = common_sse::SseReader::new(resp);
    let e = sse.next_event().await;
    assert_eq!(
        serde_json::from_str::<Value>(&e.data).unwrap()["text"],
        "while away"
    );

    let bad = app
        .get(ACME, "/v1/events")
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(expect_error(bad, 400).await, "invalid_stream_id");
}

use common::sse as common_sse;

both_backends!(
    session_lifecycle,
    seq_is_gap_free_under_concurrent_appends,
    complete_is_idempotent_with_one_event,
    tenants_never_see_each_other,
    transcript_formats,
    listing_pages_newest_first,
    delete_removes_everything,
    bad_input_gets_clear_errors,
    health_ready_and_metrics,
    sse_streams_own_tenant_and_resumes,
);
