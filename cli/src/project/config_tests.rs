//! Tests that resolve a whole `nitro.toml` through `config.rs` for the tables that other
//! modules parse (`[limits]`, `[websocket] pubsub`). They live here, not beside those modules,
//! so that no two files of `project/` import each other (`config.rs` uses them).

mod limits {
    use std::time::Duration;

    use nitro_runtime::Limits;

    use crate::project::config_limits::*;
    use std::path::Path;

    use crate::project::config::{Env, Overrides, ResolvedConfig, resolve};

    fn run(file: &str) -> Result<ResolvedConfig, String> {
        resolve(
            Path::new("/home/ada/app"),
            Path::new("examples/x"),
            Some(file),
            &Env::default(),
            &Overrides::default(),
        )
        .map_err(|err| err.to_string())
    }

    #[test]
    fn defaults() {
        let c = run("").unwrap();
        assert_eq!(c.limits, Limits::default());
        assert!(c.allowed_hosts.is_empty());
        assert_eq!(c.allowed_origins, None);
    }

    #[test]
    fn every_key() {
        let c = run(r#"
            [limits]
            ws_max_message = "2 MiB"
            ws_max_frame = 65536
            ws_buffer = "8 KiB"
            ws_send_queue = "4 MiB"
            ws_idle_timeout = 45
            max_body = "10 MB"
            body_timeout = 5.5
            max_headers = 200
            max_header_bytes = "32 KiB"
            header_read_timeout = 20
            handler_timeout = 0.25
            route_threads = 8
            ws_send_timeout = 2
            ws_max_topics = 64
            route_stack = "16 MiB"
            listen_backlog = 1024
            [websocket]
            allowed_origins = ["https://app.example", "http://localhost:5173/"]
            [dev]
            allowed_hosts = ["My-Box.local", ".example.test"]
        "#)
        .unwrap();
        let l = &c.limits;
        assert_eq!(l.ws_max_message, 2 << 20);
        assert_eq!(l.ws_max_frame, 65536);
        assert_eq!(l.ws_buffer, 8 << 10);
        assert_eq!(l.ws_send_queue, 4 << 20);
        assert_eq!(l.ws_idle_timeout, Duration::from_secs(45));
        assert_eq!(l.max_body, 10_000_000);
        assert_eq!(l.body_timeout, Duration::from_millis(5500));
        assert_eq!(l.max_headers, 200);
        assert_eq!(l.max_header_bytes, 32 << 10);
        assert_eq!(l.header_read_timeout, Duration::from_secs(20));
        assert_eq!(l.handler_timeout, Duration::from_millis(250));
        assert_eq!(l.route_threads, 8);
        assert_eq!(l.ws_send_timeout, Duration::from_secs(2));
        assert_eq!(l.ws_max_topics, 64);
        assert_eq!(l.route_stack, 16 << 20);
        assert_eq!(l.listen_backlog, 1024);
        assert_eq!(
            c.allowed_origins.unwrap(),
            ["https://app.example", "http://localhost:5173"]
        );
        assert_eq!(c.allowed_hosts, ["my-box.local", ".example.test"]);
    }

    #[test]
    fn limits_survive_the_manifest() {
        let c = run("[limits]\nhandler_timeout = 0.25\nmax_body = \"2 MiB\"\n").unwrap();
        let built = BuiltLimits::from(&c.limits);
        let json = serde_json::to_string(&built).unwrap();
        let back: BuiltLimits = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_limits(), c.limits);
    }

    #[test]
    fn an_older_manifest_gets_the_new_keys_defaults() {
        let mut json = serde_json::to_value(BuiltLimits::from(&Limits::default())).unwrap();
        for key in [
            "ws_send_timeout",
            "ws_max_topics",
            "route_stack",
            "listen_backlog",
        ] {
            json.as_object_mut().unwrap().remove(key);
        }
        let back: BuiltLimits = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_limits(), Limits::default());
    }

    #[test]
    fn the_frame_limit_follows_a_smaller_message_limit() {
        let c = run("[limits]\nws_max_message = 1000\n").unwrap();
        assert_eq!(
            (c.limits.ws_max_message, c.limits.ws_max_frame),
            (1000, 1000)
        );
    }

    #[test]
    fn mistakes_name_the_key_the_table_and_the_line() {
        let cases = [
            (
                "[limits]\nhandler_timeout = 0\n",
                "`handler_timeout` in `[limits]` of `examples/x/nitro.toml:2` must be a number of seconds greater than 0 and at most 86400, such as `30` or `0.5`, found integer `0`",
            ),
            (
                "[limits]\n\nmax_body = \"lots\"\n",
                "`max_body` in `[limits]` of `examples/x/nitro.toml:3` must be a size in bytes from 1, as a number (`1048576`) or a string with a unit (`\"1 MiB\"`), found string \"lots\"",
            ),
            (
                "[limits]\nroute_threads = 1000\n",
                "`route_threads` in `[limits]` of `examples/x/nitro.toml:2` must be a whole number from 1 to 512, found integer `1000`",
            ),
            (
                "[limits]\nmax_header_bytes = 100\n",
                "`max_header_bytes` in `[limits]` of `examples/x/nitro.toml:2` must be a size of at least 8 KiB, as a number (`16384`) or a string with a unit (`\"16 KiB\"`), found integer `100`",
            ),
            (
                "[limits]\nws_buffer = \"1 GiB\"\n",
                "`ws_buffer` in `[limits]` of `examples/x/nitro.toml:2` must be a size from 1 KiB to 64 KiB (a buffer each way for every peer), as a number (`4096`) or a string with a unit (`\"4 KiB\"`), found string \"1 GiB\"",
            ),
            (
                "[limits]\nws_idle_timeout = true\n",
                "`ws_idle_timeout` in `[limits]` of `examples/x/nitro.toml:2` must be a number of seconds greater than 0 and at most 86400, such as `30` or `0.5`, found boolean `true`",
            ),
        ];
        for (file, message) in cases {
            assert_eq!(run(file).unwrap_err(), message, "{file}");
        }
        let unknown = run("[limits]\nmax_bodi = 1\n").unwrap_err();
        assert!(
            unknown.starts_with(
                "unknown key `max_bodi` in `[limits]` of `examples/x/nitro.toml:2`: expected one of"
            ),
            "{unknown}"
        );
        let origin = run("[websocket]\nallowed_origins = [\"app.example\"]\n").unwrap_err();
        assert!(
            origin.starts_with("`allowed_origins` in `[websocket]` of `examples/x/nitro.toml:2` must be a list of origins"),
            "{origin}"
        );
        let host = run("[dev]\nallowed_hosts = [\"http://my.box:3000\"]\n").unwrap_err();
        assert!(
            host.starts_with("`allowed_hosts` in `[dev]` of `examples/x/nitro.toml:2` must be a list of host names"),
            "{host}"
        );
    }
}

mod pubsub {
    use crate::project::config::{Env, Overrides, ResolvedConfig, resolve as resolve_config};
    use std::time::Duration;

    use nitro_runtime::ws::backplane::DEFAULT_QUEUE;

    use crate::project::config_pubsub::*;
    use std::path::Path;

    fn run(file: &str, env_url: Option<&str>) -> Result<ResolvedConfig, String> {
        let env = Env {
            pubsub_url: env_url.map(str::to_owned),
            ..Env::default()
        };
        resolve_config(
            Path::new("/home/ada/app"),
            Path::new("examples/x"),
            Some(file),
            &env,
            &Overrides::default(),
        )
        .map_err(|err| err.to_string())
    }

    #[test]
    fn off_by_default() {
        assert_eq!(run("", None).unwrap().pubsub, None);
        assert_eq!(
            run("", Some("redis://x")).unwrap().pubsub,
            None,
            "the env alone does not turn it on"
        );
    }

    #[test]
    fn the_table() {
        let c = run(
            "[websocket]\npubsub = { url = \"redis://127.0.0.1:6379\", channel = \"chat-app\" }\n",
            None,
        )
        .unwrap();
        let p = c.pubsub.unwrap();
        assert_eq!(p.url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(p.channel, "chat-app");
        assert_eq!(p.queue, DEFAULT_QUEUE);
        assert_eq!(p.stats_interval, Some(Duration::from_secs(60)));
        let runtime = p.runtime(None, "nitro.toml").unwrap();
        assert_eq!(runtime.url(), "redis://127.0.0.1:6379");
        // The environment wins.
        let runtime = p
            .runtime(Some("rediss://:pw@cache.internal:6380/1"), "nitro.toml")
            .unwrap();
        assert_eq!(runtime.display_url(), "rediss://:***@cache.internal:6380/1");

        let c = run(
            "[websocket.pubsub]\nchannel = \"c\"\nqueue = 5\nstats_interval = 0\n",
            Some("redis://10.0.0.5"),
        )
        .unwrap();
        let p = c.pubsub.unwrap();
        assert_eq!((p.url, p.queue, p.stats_interval), (None, 5, None));
    }

    #[test]
    fn survives_the_manifest() {
        let c = run(
            "[websocket]\npubsub = { url = \"redis://h\", channel = \"c\", stats_interval = 2.5 }\n",
            None,
        )
        .unwrap();
        let p = c.pubsub.unwrap();
        let json = serde_json::to_string(&BuiltPubSub::from(&p)).unwrap();
        let back: BuiltPubSub = serde_json::from_str(&json).unwrap();
        assert_eq!(back.settings(), p);
    }

    #[test]
    fn mistakes_name_the_key_and_the_line() {
        let cases = [
            (
                "[websocket]\n\npubsub = { url = \"redis://127.0.0.1\" }\n",
                None,
                "`pubsub` in `[websocket]` of `examples/x/nitro.toml:3` has no `channel`: every instance of the app must name the same Redis channel",
            ),
            (
                "[websocket]\npubsub = { url = \"redis//127.0.0.1:6379\", channel = \"c\" }\n",
                None,
                "`url` of `pubsub` in `[websocket]` of `examples/x/nitro.toml:2` is `redis//127.0.0.1:6379`, which is not a Redis URL: it must start with `redis://`, `rediss://` (TLS) or `redis+unix://`",
            ),
            (
                "[websocket]\npubsub = { channel = \"c\" }\n",
                Some("http://:hunter2@127.0.0.1"),
                "environment variable `NITRO_PUBSUB_URL` is `http://:***@127.0.0.1`, which is not a Redis URL: it must start with `redis://`, `rediss://` (TLS) or `redis+unix://`",
            ),
            (
                "[websocket]\npubsub = { url = \"redis://h\", channel = \"c\", queue = 0 }\n",
                None,
                "`queue` of `pubsub` in `[websocket]` of `examples/x/nitro.toml:2` must be a whole number of messages from 1 to 10000000",
            ),
        ];
        for (file, env, message) in cases {
            assert_eq!(run(file, env).unwrap_err(), message, "{file}");
        }
        let port = run(
            "[websocket]\npubsub = { url = \"redis://127.0.0.1:port\", channel = \"c\" }\n",
            None,
        )
        .unwrap_err();
        assert!(
            port.starts_with("`url` of `pubsub` in `[websocket]` of `examples/x/nitro.toml:2` is `redis://127.0.0.1:port`, which is not a Redis URL"),
            "{port}"
        );
        let unknown = run(
            "[websocket]\npubsub = { url = \"redis://h\", channel = \"c\", chanel = \"d\" }\n",
            None,
        )
        .unwrap_err();
        assert!(
            unknown.starts_with(
                "unknown key `chanel` in `[websocket.pubsub]` of `examples/x/nitro.toml:2`"
            ),
            "{unknown}"
        );
        let string = run("[websocket]\npubsub = \"redis://h\"\n", None).unwrap_err();
        assert!(
            string.starts_with(
                "`pubsub` in `[websocket]` of `examples/x/nitro.toml:2` must be a table such as"
            ),
            "{string}"
        );
    }

    #[test]
    fn no_url_anywhere_is_an_error_when_serving() {
        let c = run("[websocket]\npubsub = { channel = \"c\" }\n", None).unwrap();
        let error = c
            .pubsub
            .unwrap()
            .runtime(None, "examples/x/nitro.toml")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`pubsub` in `[websocket]` of `examples/x/nitro.toml` has no `url`, and `NITRO_PUBSUB_URL` is not set"
        );
    }
}
