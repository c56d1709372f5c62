use super::*;
use proptest::prelude::*;

const UPSTREAM: &str = "-N aad-metadata
-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579
-A aad-metadata -j RETURN
";

fn rule(line: &str) -> Rule {
    Rule::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn listing(text: &str) -> TableListing {
    TableListing::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn chain_lines_are_upstreams_bytes() {
    let cfg = ChainConfig::default();
    assert_eq!(cfg.chain_lines().join("\n") + "\n", UPSTREAM);
    let custom = ChainConfig::from_listen_address(
        Ipv4Addr::new(10, 1, 2, 3),
        8080,
        Ipv4Addr::new(192, 0, 2, 7),
        9999,
    );
    assert_eq!(
        custom.chain_lines()[1],
        "-A aad-metadata ! -s 127.0.0.1/32 -d 10.1.2.3/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 192.0.2.7:9999"
    );
}

#[test]
fn unspecified_listen_address_targets_loopback() {
    let cfg =
        ChainConfig::from_listen_address(DEFAULT_METADATA_IP, 80, Ipv4Addr::UNSPECIFIED, 2579);
    assert_eq!(cfg.target_ip, Ipv4Addr::LOCALHOST);
    assert_eq!(cfg, ChainConfig::default());
}

#[test]
fn config_validation() {
    let ok = ChainConfig::default();
    let cases = [
        (ok, None),
        (
            ChainConfig {
                metadata_port: 0,
                ..ok
            },
            Some("metadata_port"),
        ),
        (
            ChainConfig {
                target_port: 0,
                ..ok
            },
            Some("target_port"),
        ),
        (
            ChainConfig {
                metadata_ip: Ipv4Addr::UNSPECIFIED,
                ..ok
            },
            Some("metadata_ip"),
        ),
        (
            ChainConfig {
                target_ip: Ipv4Addr::UNSPECIFIED,
                ..ok
            },
            Some("target_ip"),
        ),
    ];
    for (cfg, field) in cases {
        match (cfg.validate(), field) {
            (Ok(()), None) => {}
            (Err(e), Some(f)) => assert!(e.to_string().contains(f), "{e}"),
            (got, want) => panic!("{cfg:?}: got {got:?}, want error on {want:?}"),
        }
    }
}

#[test]
fn print_forms_compare_equal() {
    let canonical = rule(&ChainConfig::default().chain_lines()[1]);
    // Spellings that different iptables versions/backends print or accept for the same rule.
    let same = [
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata -p tcp ! -s 127.0.0.1/32 -d 169.254.169.254 --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata -d 169.254.169.254/32 ! -s 127.0.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata -s ! 127.0.0.1 -d 169.254.169.254/255.255.255.255 -p 6 -m tcp --destination-port 80 -j DNAT --to-destination 127.0.0.1:2579",
        "--append aad-metadata ! --source 127.0.0.1/32 --destination 169.254.169.254/32 --protocol tcp --match tcp --dport 80 --jump DNAT --to-destination 127.0.0.1:2579",
        "[12:720] -A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p TCP -m tcp --dport 080 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -c 5 300 -j DNAT --to-destination 127.0.0.1:2579",
    ];
    for line in same {
        assert_eq!(rule(line), canonical, "{line}");
    }
    let different = [
        "-A aad-metadata -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p udp -m udp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2580",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.0.0/16 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment \"x y\" -j DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -g DNAT --to-destination 127.0.0.1:2579",
        "-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp ! --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
        "-A other ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579",
    ];
    for line in different {
        assert_ne!(rule(line), canonical, "{line}");
    }
}

#[test]
fn module_association_is_kept() {
    // Same options, different modules: must not compare equal after sorting.
    assert_ne!(
        rule("-A c -m a --x 1 -m b --y 2 -j RETURN"),
        rule("-A c -m a --y 2 -m b --x 1 -j RETURN")
    );
    assert_eq!(
        rule("-A c -m a --x 1 -m b --y 2 -j RETURN"),
        rule("-A c -m b --y 2 -m a --x 1 -j RETURN")
    );
}

#[test]
fn rule_errors() {
    let cases: [(&str, RuleError); 6] = [
        (
            "-A c -m comment --comment \"open",
            RuleError::UnterminatedQuote,
        ),
        ("-I c 1 -j RETURN", RuleError::NotAnAppend),
        ("-A", RuleError::NotAnAppend),
        (
            "-A c -j",
            RuleError::MissingValue {
                option: "-j".into(),
            },
        ),
        ("-A c ! ! -s 1.2.3.4 -j RETURN", RuleError::DanglingNegation),
        (
            "-A c bogus -j RETURN",
            RuleError::StrayValue {
                word: "bogus".into(),
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(Rule::parse(line), Err(want), "{line}");
    }
}

#[test]
fn quoted_values_are_unescaped() {
    let a = rule(r#"-A c -m comment --comment "say \"hi\" now" -j RETURN"#);
    let b = rule(r#"-A c -m comment --comment "say \"hi\" now" -j RETURN"#);
    assert_eq!(a, b);
    assert_ne!(
        a,
        rule(r#"-A c -m comment --comment "say hi now" -j RETURN"#)
    );
    // A quoted value that starts with `-` is a value, not an option.
    assert!(Rule::parse(r#"-A c -m comment --comment "-x" -j RETURN"#).is_ok());
}

#[test]
fn plain_jump_detection() {
    let cases = [
        ("-A PREROUTING -j aad-metadata", true, true),
        ("-A PREROUTING -g aad-metadata", false, true),
        ("-A PREROUTING -i eth0 -j aad-metadata", false, true),
        ("-A PREROUTING -j KUBE-SERVICES", false, false),
        (
            "-A PREROUTING -m comment --comment x -j aad-metadata",
            false,
            true,
        ),
    ];
    for (line, plain, refers) in cases {
        let r = rule(line);
        assert_eq!(r.is_plain_jump_to(CHAIN), plain, "{line}");
        assert_eq!(r.refers_to(CHAIN), refers, "{line}");
    }
}

#[test]
fn chain_verdicts() {
    let cfg = ChainConfig::default();
    let wrong_port = UPSTREAM.replace("--dport 80", "--dport 81");
    let extra = format!("{UPSTREAM}-A aad-metadata -j ACCEPT\n");
    let swapped = "-N aad-metadata\n-A aad-metadata -j RETURN\n-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579\n";
    let garbled =
        "-N aad-metadata\n-A aad-metadata -m comment --comment \"x\n-A aad-metadata -j RETURN\n";
    let legacy_full = format!(
        "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n-N KUBE-SERVICES\n{}",
        UPSTREAM.replacen(
            "-N aad-metadata\n",
            "-N aad-metadata\n-A PREROUTING -j aad-metadata\n",
            1
        )
    );
    let save_form = "*nat\n:PREROUTING ACCEPT [0:0]\n:aad-metadata - [0:0]\n-A PREROUTING -j aad-metadata\n-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579\n-A aad-metadata -j RETURN\nCOMMIT\n";
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("exact", UPSTREAM, None),
        ("whole table", &legacy_full, None),
        ("save form", save_form, None),
        ("missing", "-P PREROUTING ACCEPT\n", Some("missing")),
        ("empty", "-N aad-metadata\n", Some("0 rules")),
        ("wrong port", &wrong_port, Some("--dport 81")),
        ("extra rule", &extra, Some("3 rules")),
        (
            "swapped",
            swapped,
            Some("rule 1 is `-A aad-metadata -j RETURN`"),
        ),
        ("garbled", garbled, Some("not understood")),
    ];
    for (name, text, want) in cases {
        let verdict = chain_verdict(&listing(text), &cfg);
        match (want, &verdict) {
            (None, ChainVerdict::Exact) => {}
            (Some("missing"), ChainVerdict::Missing) => {}
            (Some(w), ChainVerdict::Differs { reason }) if reason.contains(w) => {}
            _ => panic!("{name}: got {verdict:?}, want {want:?}"),
        }
    }
}

#[test]
fn jump_verdicts() {
    let cases: [(&str, JumpVerdict); 6] = [
        ("-P PREROUTING ACCEPT\n", JumpVerdict::Missing),
        ("", JumpVerdict::Missing),
        (
            "-A PREROUTING -j aad-metadata\n-A PREROUTING -j KUBE-SERVICES\n",
            JumpVerdict::First,
        ),
        (
            "-A PREROUTING -j KUBE-SERVICES\n-A PREROUTING -j aad-metadata\n",
            JumpVerdict::Misplaced { positions: vec![2] },
        ),
        (
            "-A PREROUTING -j aad-metadata\n-A PREROUTING -j KUBE-SERVICES\n-A PREROUTING -j aad-metadata\n",
            JumpVerdict::Misplaced {
                positions: vec![1, 3],
            },
        ),
        // A jump with a match is not ours; ours is missing.
        (
            "-A PREROUTING -i eth0 -j aad-metadata\n",
            JumpVerdict::Missing,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(jump_verdict(&listing(text)), want, "{text}");
    }
}

#[test]
fn listing_errors_and_tolerance() {
    assert!(matches!(
        TableListing::parse("-P PREROUTING ACCEPT\nhello world\n"),
        Err(ParseError::UnexpectedLine { line: 2, .. })
    ));
    assert!(matches!(
        TableListing::parse("-N\n"),
        Err(ParseError::MissingChain { line: 1, .. })
    ));
    // Warnings and blank lines are skipped.
    let l = listing(
        "# Warning: iptables-legacy tables present, use iptables-legacy to see them\n\n-P PREROUTING ACCEPT\n",
    );
    assert_eq!(
        l.chain(PREROUTING).and_then(|c| c.policy.as_deref()),
        Some("ACCEPT")
    );
    assert!(matches!(
        SaveDump::parse("-A PREROUTING -j x\n"),
        Err(ParseError::OutsideTable { line: 1, .. })
    ));
}

#[test]
fn plans_render_atomic_scripts() {
    let cfg = ChainConfig::default();
    let exact = format!("-A PREROUTING -j aad-metadata\n{UPSTREAM}");
    assert_eq!(
        EnsurePlan::new(&listing(&exact), &cfg).restore_script(&cfg),
        None
    );

    let plan = EnsurePlan::new(&listing("-P PREROUTING ACCEPT\n"), &cfg);
    assert_eq!(
        plan.restore_script(&cfg).as_deref(),
        Some(
            "*nat\n:aad-metadata - [0:0]\n-A aad-metadata ! -s 127.0.0.1/32 -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:2579\n-A aad-metadata -j RETURN\n-I PREROUTING 1 -j aad-metadata\nCOMMIT\n"
        )
    );

    let moved = format!(
        "-A PREROUTING -j KUBE\n-A PREROUTING -j aad-metadata\n-A PREROUTING -j aad-metadata\n{UPSTREAM}"
    );
    let plan = EnsurePlan::new(&listing(&moved), &cfg);
    assert_eq!(plan.chain, ChainVerdict::Exact);
    assert_eq!(
        plan.restore_script(&cfg).as_deref(),
        Some(
            "*nat\n-D PREROUTING -j aad-metadata\n-D PREROUTING -j aad-metadata\n-I PREROUTING 1 -j aad-metadata\nCOMMIT\n"
        )
    );

    let stale = format!(
        "-A PREROUTING -j aad-metadata\n-A OUTPUT -m comment --comment \"a b\" -g aad-metadata\n{UPSTREAM}"
    );
    let removal = RemovalPlan::new(&listing(&stale));
    assert_eq!(
        removal.restore_script().as_deref(),
        Some("*nat\n-D PREROUTING -j aad-metadata\n-D OUTPUT -m comment --comment \"a b\" -g aad-metadata\nCOMMIT\n")
            .map(|s| s.replace("COMMIT\n", "-F aad-metadata\n-X aad-metadata\nCOMMIT\n"))
            .as_deref()
    );
    assert_eq!(
        RemovalPlan::new(&listing("-P PREROUTING ACCEPT\n")).restore_script(),
        None
    );
}

#[test]
fn backend_choice_like_iptables_wrapper() {
    let ev = |nat_rules, kube_hint| BackendEvidence {
        nat_rules,
        kube_hint,
    };
    let cases = [
        (ev(0, false), ev(0, false), BackendKind::Nft),
        (ev(5, false), ev(5, false), BackendKind::Nft),
        (ev(6, false), ev(5, false), BackendKind::Legacy),
        (ev(1, false), ev(9, false), BackendKind::Nft),
        (ev(0, true), ev(50, false), BackendKind::Legacy),
        (ev(50, false), ev(0, true), BackendKind::Nft),
        (ev(50, true), ev(1, true), BackendKind::Legacy),
    ];
    for (legacy, nft, want) in cases {
        assert_eq!(choose_backend(&legacy, &nft), want, "{legacy:?} {nft:?}");
    }
}

#[test]
fn evidence_ignores_our_own_rules() {
    let dump = SaveDump::parse(&format!(
        "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:aad-metadata - [0:0]\n-A PREROUTING -j aad-metadata\n-A PREROUTING -j KUBE-SERVICES\n{}COMMIT\n",
        UPSTREAM.replacen("-N aad-metadata\n", "", 1)
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        BackendEvidence::from_save(&dump),
        BackendEvidence {
            nat_rules: 1,
            kube_hint: true
        }
    );
    assert_eq!(
        BackendEvidence::from_save(&SaveDump::default()),
        BackendEvidence::default()
    );
}

// === a model of iptables-restore --noflush, to check that plans converge ===

fn apply(listing: &mut TableListing, script: &str) -> Result<(), String> {
    for line in script.lines() {
        if line.starts_with('*') || line == "COMMIT" {
            continue;
        }
        let mut words = line.split_whitespace();
        let op = words.next().ok_or("empty line")?;
        if let Some(chain) = op.strip_prefix(':') {
            listing.chain_mut(chain).rules.clear();
            continue;
        }
        let chain = words.next().ok_or("no chain")?.to_owned();
        let rest: Vec<&str> = words.collect();
        match op {
            "-A" => {
                let text = format!("-A {chain} {}", rest.join(" "));
                let rule = Rule::parse(&text);
                listing
                    .chain_mut(&chain)
                    .rules
                    .push(RuleLine { text, rule });
            }
            "-I" => {
                let text = format!("-A {chain} {}", rest.get(1..).ok_or("no spec")?.join(" "));
                let rule = Rule::parse(&text);
                listing
                    .chain_mut(&chain)
                    .rules
                    .insert(0, RuleLine { text, rule });
            }
            "-D" => {
                let want = Rule::parse(&format!("-A {chain} {}", rest.join(" ")))
                    .map_err(|e| e.to_string())?;
                let c = listing.chain_mut(&chain);
                let pos = c
                    .rules
                    .iter()
                    .position(|r| r.rule.as_ref() == Ok(&want))
                    .ok_or(format!("-D {chain}: no such rule"))?;
                c.rules.remove(pos);
            }
            "-F" => listing.chain_mut(&chain).rules.clear(),
            "-X" => {
                if !listing.references_to(&chain).is_empty() {
                    return Err(format!("-X {chain}: still referenced"));
                }
                listing.chains.retain(|c| c.name != chain);
            }
            other => return Err(format!("unknown op {other}")),
        }
    }
    Ok(())
}

fn arb_config() -> impl Strategy<Value = ChainConfig> {
    (any::<u32>(), 1u16.., any::<u32>(), 1u16..).prop_map(|(m, mp, t, tp)| ChainConfig {
        metadata_ip: Ipv4Addr::from(m | 1),
        metadata_port: mp,
        target_ip: Ipv4Addr::from(t | 1),
        target_port: tp,
    })
}

fn arb_prerouting_rule() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-A PREROUTING -j aad-metadata".to_owned()),
        Just("-A PREROUTING -j KUBE-SERVICES".to_owned()),
        Just("-A PREROUTING -i eth0 -j aad-metadata".to_owned()),
        (1u16..).prop_map(|p| format!("-A PREROUTING -p udp -m udp --dport {p} -j RETURN")),
    ]
}

fn arb_chain_rule(cfg: ChainConfig) -> impl Strategy<Value = String> {
    let [_, dnat, ret] = cfg.chain_lines();
    prop_oneof![
        Just(dnat),
        Just(ret),
        Just("-A aad-metadata -j ACCEPT".to_owned()),
        (1u16..).prop_map(|p| format!(
            "-A aad-metadata -p tcp -m tcp --dport {p} -j DNAT --to-destination 127.0.0.1:1"
        )),
    ]
}

proptest! {
    #[test]
    fn desired_lines_parse_to_desired_rules(cfg in arb_config()) {
        let lines = cfg.chain_lines();
        let want = cfg.desired_rules();
        prop_assert_eq!(&rule(&lines[1]), &want[0]);
        prop_assert_eq!(&rule(&lines[2]), &want[1]);
        let text = format!("{}\n", lines.join("\n"));
        prop_assert_eq!(chain_verdict(&listing(&text), &cfg), ChainVerdict::Exact);
    }

    #[test]
    fn any_field_change_is_detected(cfg in arb_config(), other in arb_config()) {
        prop_assume!(cfg != other);
        let text = format!("{}\n", other.chain_lines().join("\n"));
        let differs = matches!(chain_verdict(&listing(&text), &cfg), ChainVerdict::Differs { .. });
        prop_assert!(differs);
    }

    #[test]
    fn ensure_plan_converges_in_one_step(
        cfg in arb_config(),
        prerouting in proptest::collection::vec(arb_prerouting_rule(), 0..6),
        chain in proptest::option::of(proptest::collection::vec(arb_chain_rule(ChainConfig::default()), 0..4)),
    ) {
        let mut text = String::from("-P PREROUTING ACCEPT\n");
        if chain.is_some() { text.push_str("-N aad-metadata\n"); }
        for r in &prerouting { text.push_str(r); text.push('\n'); }
        for r in chain.iter().flatten() { text.push_str(r); text.push('\n'); }
        let mut state = listing(&text);
        let others_before: Vec<String> = state.chain(PREROUTING).map(|c| c.rules.iter()
            .filter(|r| !r.rule.as_ref().is_ok_and(|x| x.is_plain_jump_to(CHAIN)))
            .map(|r| r.text.clone()).collect()).unwrap_or_default();

        let plan = EnsurePlan::new(&state, &cfg);
        if let Some(script) = plan.restore_script(&cfg) {
            prop_assert!(apply(&mut state, &script).is_ok(), "{}", script);
        }
        let again = EnsurePlan::new(&state, &cfg);
        prop_assert!(again.is_noop(), "{:?}", again);
        prop_assert_eq!(again.restore_script(&cfg), None);
        // Other PREROUTING rules survive, in order, after our jump.
        let others_after: Vec<String> = state.chain(PREROUTING).map(|c| c.rules.iter().skip(1)
            .map(|r| r.text.clone()).collect()).unwrap_or_default();
        prop_assert_eq!(others_before, others_after);
    }

    #[test]
    fn removal_plan_clears_everything(
        prerouting in proptest::collection::vec(arb_prerouting_rule(), 0..6),
        with_chain in any::<bool>(),
    ) {
        let mut text = String::from("-P PREROUTING ACCEPT\n");
        if with_chain { text.push_str(UPSTREAM); }
        for r in &prerouting { text.push_str(r); text.push('\n'); }
        let mut state = listing(&text);
        if let Some(script) = RemovalPlan::new(&state).restore_script() {
            prop_assert!(apply(&mut state, &script).is_ok(), "{}", script);
        }
        prop_assert!(RemovalPlan::new(&state).is_noop());
        prop_assert!(state.chain(CHAIN).is_none());
        let kube_left = state.chain(PREROUTING).map_or(0, |c| c.rules.len());
        prop_assert_eq!(kube_left, prerouting.iter().filter(|r| r.contains("KUBE") || r.contains("udp")).count());
    }

    #[test]
    fn parser_never_panics(line in "\\PC{0,80}") {
        let _ = Rule::parse(&line);
        let _ = TableListing::parse(&line);
        let _ = SaveDump::parse(&line);
    }

    #[test]
    fn cidr_normalisation_is_idempotent(ip in any::<u32>(), prefix in 0u32..=32) {
        let once = canonical_cidr(&format!("{}/{prefix}", Ipv4Addr::from(ip)));
        prop_assert_eq!(canonical_cidr(&once), once.clone());
        let suffix = format!("/{prefix}");
        prop_assert!(once.ends_with(&suffix));
    }
}
