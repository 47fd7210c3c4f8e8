use super::*;

async fn store_with_account() -> (Store, i64, tempfile::TempDir) {
    let (dir, store, ids) = crate::store::testing::store_with_accounts(&["a@example.org"]).await;
    (store, ids[0], dir)
}

#[test]
fn names_follow_rfc_5804() {
    assert!(valid_name("mailroom"));
    assert!(valid_name("Ürlaub 2026 ✓"));
    assert!(valid_name(&"é".repeat(MAX_NAME_CHARS)));
    assert!(!valid_name(&"é".repeat(MAX_NAME_CHARS + 1)));
    assert!(!valid_name(""));
    for bad in [
        "a\nb",
        "a\tb",
        "a\u{7f}",
        "a\u{85}",
        "a\u{2028}",
        "a\u{2029}",
        "\0",
    ] {
        assert!(!valid_name(bad), "{bad:?}");
    }
}

#[test]
fn the_quota_counts_a_replaced_script_once() {
    assert_eq!(fits(0, 0, None, 10), None);
    assert_eq!(
        fits(MAX_SCRIPTS, 0, None, 1),
        Some(SieveRefusal::MaxScripts)
    );
    // Replacing needs no new slot.
    assert_eq!(fits(MAX_SCRIPTS, 100, Some(50), 60), None);
    assert_eq!(fits(1, 0, None, MAX_TOTAL_BYTES), None);
    assert_eq!(
        fits(1, 1, None, MAX_TOTAL_BYTES),
        Some(SieveRefusal::MaxSize)
    );
    assert_eq!(
        fits(1, MAX_TOTAL_BYTES, Some(MAX_TOTAL_BYTES), MAX_TOTAL_BYTES),
        None
    );
}

#[tokio::test]
async fn put_list_get_activate_rename_delete() {
    let (store, a, _dir) = store_with_account().await;
    assert!(store.sieve_scripts(a).await.unwrap().is_empty());
    assert_eq!(store.active_sieve(a).await.unwrap(), None);
    store
        .put_sieve(a, "one", "keep;", "{1}")
        .await
        .unwrap()
        .unwrap();
    store
        .put_sieve(a, "two", "discard;", "{2}")
        .await
        .unwrap()
        .unwrap();
    let list = store.sieve_scripts(a).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|s| (s.name.as_str(), s.size, s.active))
            .collect::<Vec<_>>(),
        [("one", 5, false), ("two", 8, false)]
    );
    let got = store.sieve_script(a, "one").await.unwrap().unwrap();
    assert_eq!(
        (got.source.as_str(), got.compiled.as_str()),
        ("keep;", "{1}")
    );
    assert_eq!(
        store.sieve_script(a, "ONE").await.unwrap(),
        None,
        "names are exact"
    );

    assert_eq!(
        store.set_active_sieve(a, Some("nope")).await.unwrap(),
        Err(SieveRefusal::Nonexistent)
    );
    store
        .set_active_sieve(a, Some("one"))
        .await
        .unwrap()
        .unwrap();
    store
        .set_active_sieve(a, Some("two"))
        .await
        .unwrap()
        .unwrap();
    let active = store.active_sieve(a).await.unwrap().unwrap();
    assert_eq!(
        (active.name.as_str(), active.source.as_str()),
        ("two", "discard;")
    );
    assert!(!store.sieve_script(a, "one").await.unwrap().unwrap().active);

    // Replacing keeps the active flag.
    store
        .put_sieve(a, "two", "stop;", "{3}")
        .await
        .unwrap()
        .unwrap();
    let active = store.active_sieve(a).await.unwrap().unwrap();
    assert_eq!(
        (active.source.as_str(), active.compiled.as_str()),
        ("stop;", "{3}")
    );

    assert_eq!(
        store.delete_sieve(a, "two").await.unwrap(),
        Err(SieveRefusal::Active)
    );
    assert_eq!(
        store.delete_sieve(a, "three").await.unwrap(),
        Err(SieveRefusal::Nonexistent)
    );
    assert_eq!(
        store.rename_sieve(a, "two", "one").await.unwrap(),
        Err(SieveRefusal::AlreadyExists)
    );
    assert_eq!(
        store.rename_sieve(a, "three", "four").await.unwrap(),
        Err(SieveRefusal::Nonexistent)
    );
    assert_eq!(
        store.rename_sieve(a, "two", "").await.unwrap(),
        Err(SieveRefusal::InvalidName)
    );
    store.rename_sieve(a, "two", "deux").await.unwrap().unwrap();
    assert_eq!(store.active_sieve(a).await.unwrap().unwrap().name, "deux");

    store.set_active_sieve(a, None).await.unwrap().unwrap();
    assert_eq!(store.active_sieve(a).await.unwrap(), None);
    store.delete_sieve(a, "deux").await.unwrap().unwrap();
    let names: Vec<String> = store
        .sieve_scripts(a)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["one"]);
    assert_eq!(
        store
            .put_sieve(a, "bad\nname", "keep;", "{}")
            .await
            .unwrap(),
        Err(SieveRefusal::InvalidName)
    );
}

#[tokio::test]
async fn quotas_refuse_the_33rd_script_and_the_2nd_mebibyte() {
    let (store, a, _dir) = store_with_account().await;
    for i in 0..MAX_SCRIPTS {
        store
            .put_sieve(a, &format!("s{i}"), "keep;", "{}")
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store.put_sieve(a, "one more", "keep;", "{}").await.unwrap(),
        Err(SieveRefusal::MaxScripts)
    );
    assert_eq!(
        store.sieve_space(a, "one more", 5).await.unwrap(),
        Err(SieveRefusal::MaxScripts)
    );
    // Replacing one is still possible.
    assert_eq!(store.sieve_space(a, "s0", 5).await.unwrap(), Ok(()));
    store
        .put_sieve(a, "s0", "stop;", "{}")
        .await
        .unwrap()
        .unwrap();
    let big = "#".repeat(usize::try_from(MAX_TOTAL_BYTES).unwrap() / 2);
    store.put_sieve(a, "s1", &big, "{}").await.unwrap().unwrap();
    assert_eq!(
        store.put_sieve(a, "s2", &big, "{}").await.unwrap(),
        Err(SieveRefusal::MaxSize)
    );
    assert_eq!(
        store
            .sieve_space(a, "s2", u64::try_from(big.len()).unwrap())
            .await
            .unwrap(),
        Err(SieveRefusal::MaxSize)
    );
    assert_eq!(store.sieve_space(a, "s1", 10).await.unwrap(), Ok(()));
    assert_eq!(
        store.sieve_space(a, "", 10).await.unwrap(),
        Err(SieveRefusal::InvalidName)
    );
    assert_eq!(
        store.sieve_script(a, "s2").await.unwrap().unwrap().source,
        "keep;"
    );
}

#[tokio::test]
async fn vacation_replies_once_per_period_and_prunes() {
    let (store, a, _dir) = store_with_account().await;
    let t: i64 = 1_000_000;
    let day: u64 = 86_400;
    let days = |n: i64| n * 86_400;
    assert!(
        store
            .vacation_reply_due(a, "h", "x@example.net", day, t)
            .await
            .unwrap()
    );
    assert!(
        !store
            .vacation_reply_due(a, "h", "x@example.net", day, t + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .vacation_reply_due(a, "h", "X@Example.NET", day, t + 10)
            .await
            .unwrap()
    );
    // Another handle or sender replies.
    assert!(
        store
            .vacation_reply_due(a, "h2", "x@example.net", day, t + 10)
            .await
            .unwrap()
    );
    assert!(
        store
            .vacation_reply_due(a, "h", "y@example.net", day, t + 10)
            .await
            .unwrap()
    );
    // After the period, again (and the silence starts anew).
    assert!(
        store
            .vacation_reply_due(a, "h", "x@example.net", day, t + days(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .vacation_reply_due(a, "h", "x@example.net", day, t + days(1) + 1)
            .await
            .unwrap()
    );
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sieve_vacation")
            .fetch_one(&store.reader)
            .await
            .unwrap()
    };
    assert_eq!(rows().await, 3);
    // A reply long after prunes the expired rows in the same write.
    assert!(
        store
            .vacation_reply_due(a, "z", "z@example.net", day, t + days(10))
            .await
            .unwrap()
    );
    assert_eq!(rows().await, 1);
    assert_eq!(store.prune_vacation_replies(t + days(20)).await.unwrap(), 1);
    assert_eq!(rows().await, 0);
}

#[tokio::test]
async fn runtime_errors_are_kept_until_the_script_changes() {
    let (store, a, _dir) = store_with_account().await;
    assert_eq!(store.sieve_error(a).await.unwrap(), None);
    store
        .put_sieve(a, "s", "keep;", "{}")
        .await
        .unwrap()
        .unwrap();
    store
        .put_sieve(a, "other", "keep;", "{}")
        .await
        .unwrap()
        .unwrap();
    store.set_active_sieve(a, Some("s")).await.unwrap().unwrap();
    let long = "x".repeat(MAX_ERROR_CHARS + 50);
    store.record_sieve_error(a, "s", &long, 42).await.unwrap();
    let e = store.sieve_error(a).await.unwrap().unwrap();
    assert_eq!(
        (e.at, e.script.as_str(), e.message.len()),
        (42, "s", MAX_ERROR_CHARS)
    );
    store
        .record_sieve_error(a, "s", "too many actions", 43)
        .await
        .unwrap();
    assert_eq!(
        store.sieve_error(a).await.unwrap().unwrap().message,
        "too many actions"
    );
    // Another script's upload leaves it; the active one's clears it.
    store
        .put_sieve(a, "other", "stop;", "{}")
        .await
        .unwrap()
        .unwrap();
    assert!(store.sieve_error(a).await.unwrap().is_some());
    store
        .put_sieve(a, "s", "stop;", "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.sieve_error(a).await.unwrap(), None);
    store.record_sieve_error(a, "s", "again", 44).await.unwrap();
    store.set_active_sieve(a, None).await.unwrap().unwrap();
    assert_eq!(store.sieve_error(a).await.unwrap(), None);
    store.record_sieve_error(a, "s", "again", 45).await.unwrap();
    store.clear_sieve_error(a).await.unwrap();
    assert_eq!(store.sieve_error(a).await.unwrap(), None);
}

#[tokio::test]
async fn external_forwarding_is_allowed_until_the_domain_forbids_it() {
    let (store, a, _dir) = store_with_account().await;
    assert!(
        store
            .domain_allows_external_forward("example.org")
            .await
            .unwrap()
    );
    assert!(store.account_may_forward_externally(a).await.unwrap());
    store
        .set_domain_allows_external_forward("EXAMPLE.org.", false)
        .await
        .unwrap();
    assert!(
        !store
            .domain_allows_external_forward("example.org")
            .await
            .unwrap()
    );
    assert!(!store.account_may_forward_externally(a).await.unwrap());
    assert!(matches!(
        store
            .set_domain_allows_external_forward("nope.test", true)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.account_may_forward_externally(a + 100).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_account_takes_its_scripts_and_records_with_it() {
    let (store, a, _dir) = store_with_account().await;
    store
        .put_sieve(a, "s", "keep;", "{}")
        .await
        .unwrap()
        .unwrap();
    store
        .vacation_reply_due(a, "h", "x@example.net", 60, 1)
        .await
        .unwrap();
    store.record_sieve_error(a, "s", "e", 1).await.unwrap();
    store.remove_account("a@example.org").await.unwrap();
    for (table, sql) in [
        ("sieve_scripts", "SELECT COUNT(*) FROM sieve_scripts"),
        ("sieve_vacation", "SELECT COUNT(*) FROM sieve_vacation"),
        ("sieve_errors", "SELECT COUNT(*) FROM sieve_errors"),
    ] {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}
