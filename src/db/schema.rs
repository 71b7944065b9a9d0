// One schema for both backends; the migrations in migrations/sqlite and migrations/postgres
// must produce these columns (tests/suite/migrations.rs checks that they do).

diesel::table! {
    clinics (id) {
        id -> Text,
        name -> Text,
        timezone -> Text,
        jurisdiction -> Text,
        address -> Nullable<Text>,
        registration_number -> Nullable<Text>,
        created_at -> Timestamp,
        pack_shelf_life_days -> Nullable<Integer>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        active -> Bool,
        token_version -> BigInt,
        created_at -> Timestamp,
        password_changed_at -> Timestamp,
    }
}

diesel::table! {
    memberships (id) {
        id -> Text,
        clinic_id -> Text,
        user_id -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        works_on_clients -> Bool,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    chain_heads (clinic_id) {
        clinic_id -> Text,
        seq -> BigInt,
        head_hash -> Text,
    }
}

diesel::table! {
    audit_events (clinic_id, seq) {
        clinic_id -> Text,
        seq -> BigInt,
        recorded_at -> Timestamp,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        entity_kind -> Text,
        entity_id -> Text,
        payload -> Text,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    idempotency_keys (user_id, scope, idempotency_key) {
        user_id -> Text,
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        content_type -> Nullable<Text>,
        response_body -> Nullable<Binary>,
        created_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sterilisers (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        make -> Text,
        model -> Text,
        serial_number -> Text,
        kind -> Text,
        chamber_litres -> Nullable<Double>,
        location -> Nullable<Text>,
        installed_on -> Nullable<Date>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    steriliser_status_changes (id) {
        id -> Text,
        clinic_id -> Text,
        steriliser_id -> Text,
        in_service -> Bool,
        cause -> Text,
        reason -> Text,
        spore_test_id -> Nullable<Text>,
        changed_by -> Nullable<Text>,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    cycles (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        steriliser_id -> Text,
        cycle_number -> BigInt,
        program_name -> Text,
        program_temperature_c -> Double,
        program_hold_minutes -> Double,
        started_at -> Timestamp,
        finished_at -> Timestamp,
        peak_temperature_c -> Double,
        peak_pressure_kpa -> Double,
        hold_minutes -> Double,
        operator_id -> Text,
        load_indicator_type -> Integer,
        load_indicator_passed -> Bool,
        notes -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    packs (id) {
        id -> Text,
        clinic_id -> Text,
        cycle_id -> Text,
        code -> Text,
        contents -> Text,
        indicator_type -> Nullable<Integer>,
        indicator_passed -> Nullable<Bool>,
        shelf_life_days -> Nullable<Integer>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    spore_tests (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        steriliser_id -> Text,
        cycle_id -> Text,
        bi_product -> Text,
        bi_lot -> Text,
        placed_at -> Timestamp,
        incubation -> Text,
        incubation_hours -> Nullable<Double>,
        posted_on -> Nullable<Date>,
        lab_name -> Nullable<Text>,
        lab_deadline -> Nullable<Date>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    spore_test_results (spore_test_id, version) {
        spore_test_id -> Text,
        version -> Integer,
        clinic_id -> Text,
        result -> Text,
        control_result -> Text,
        read_at -> Timestamp,
        lab_reference -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        correction_reason -> Nullable<Text>,
    }
}

diesel::table! {
    air_removal_tests (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        steriliser_id -> Text,
        performed_at -> Timestamp,
        test_type -> Text,
        passed -> Bool,
        notes -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    lots (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        kind -> Text,
        manufacturer -> Text,
        product_name -> Text,
        product_code -> Nullable<Text>,
        gtin -> Nullable<Text>,
        lot_number -> Text,
        expiry_date -> Date,
        sterilisation_method -> Text,
        supplier -> Nullable<Text>,
        received_on -> Date,
        quantity_received -> Integer,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    lot_recalls (lot_id) {
        lot_id -> Text,
        clinic_id -> Text,
        reason -> Text,
        reference -> Text,
        recalled_by -> Nullable<Text>,
        recalled_at -> Timestamp,
    }
}

diesel::table! {
    lot_withdrawals (lot_id) {
        lot_id -> Text,
        clinic_id -> Text,
        reason -> Text,
        withdrawn_by -> Nullable<Text>,
        withdrawn_at -> Timestamp,
    }
}

diesel::table! {
    credentials (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        user_id -> Text,
        kind -> Text,
        issuer -> Nullable<Text>,
        number -> Nullable<Text>,
        issued_on -> Nullable<Date>,
        expires_on -> Nullable<Date>,
        hepatitis_b_status -> Nullable<Text>,
        declined_on -> Nullable<Date>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    credential_verifications (credential_id, credential_version) {
        credential_id -> Text,
        credential_version -> Integer,
        clinic_id -> Text,
        verified_by -> Text,
        verified_at -> Timestamp,
    }
}

diesel::table! {
    checklist_templates (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        name -> Text,
        items -> Text,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    clients (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        name -> Text,
        contact -> Text,
        date_of_birth -> Date,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        clinic_id -> Text,
        client_id -> Text,
        technician_id -> Text,
        station -> Text,
        procedure_name -> Text,
        planned_at -> Timestamp,
        template_id -> Text,
        template_version -> Integer,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    session_answers (id) {
        id -> Text,
        clinic_id -> Text,
        session_id -> Text,
        item_key -> Text,
        answer -> Text,
        answered_at -> Timestamp,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    session_packs (session_id, pack_code) {
        session_id -> Text,
        pack_code -> Text,
        clinic_id -> Text,
        snapshot -> Text,
        added_by -> Nullable<Text>,
        added_at -> Timestamp,
    }
}

diesel::table! {
    session_lots (session_id, lot_id) {
        session_id -> Text,
        lot_id -> Text,
        clinic_id -> Text,
        lot_version -> Integer,
        snapshot -> Text,
        added_by -> Nullable<Text>,
        added_at -> Timestamp,
    }
}

diesel::table! {
    session_starts (session_id) {
        session_id -> Text,
        clinic_id -> Text,
        started_at -> Timestamp,
        started_by -> Nullable<Text>,
        override_reason -> Nullable<Text>,
        refusals -> Text,
        technician_snapshot -> Text,
    }
}

diesel::table! {
    session_completions (session_id) {
        session_id -> Text,
        clinic_id -> Text,
        completed_at -> Timestamp,
        completed_by -> Nullable<Text>,
        notes -> Nullable<Text>,
    }
}

diesel::table! {
    incidents (id, version) {
        id -> Text,
        version -> Integer,
        clinic_id -> Text,
        kind -> Text,
        occurred_at -> Timestamp,
        location -> Text,
        session_id -> Nullable<Text>,
        people -> Text,
        description -> Text,
        immediate_actions -> Text,
        sharps_device_type -> Nullable<Text>,
        sharps_device_brand -> Nullable<Text>,
        sharps_work_area -> Nullable<Text>,
        sharps_how -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
        amendment_reason -> Nullable<Text>,
    }
}

diesel::table! {
    incident_follow_ups (id) {
        id -> Text,
        clinic_id -> Text,
        incident_id -> Text,
        kind -> Text,
        note -> Text,
        done_at -> Timestamp,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    incident_closures (incident_id) {
        incident_id -> Text,
        clinic_id -> Text,
        closed_at -> Timestamp,
        closed_by -> Nullable<Text>,
        summary -> Text,
    }
}

diesel::table! {
    inspector_grants (id) {
        id -> Text,
        clinic_id -> Text,
        user_id -> Text,
        valid_from -> Timestamp,
        valid_until -> Timestamp,
        purpose -> Nullable<Text>,
        granted_by -> Nullable<Text>,
        granted_at -> Timestamp,
        client_details -> Bool,
    }
}

diesel::table! {
    inspector_grant_revocations (grant_id) {
        grant_id -> Text,
        clinic_id -> Text,
        reason -> Text,
        revoked_by -> Nullable<Text>,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    invitations (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        clinic_id -> Nullable<Text>,
        role -> Nullable<Text>,
        works_on_clients -> Nullable<Bool>,
        invited_by -> Nullable<Text>,
    }
}

diesel::table! {
    exports (id) {
        id -> Text,
        clinic_id -> Text,
        period_from -> Timestamp,
        period_to -> Timestamp,
        requested_by -> Nullable<Text>,
        requested_at -> Timestamp,
    }
}

diesel::table! {
    export_results (export_id) {
        export_id -> Text,
        clinic_id -> Text,
        succeeded -> Bool,
        sha256 -> Nullable<Text>,
        bytes -> Nullable<BigInt>,
        chain_head -> Nullable<Text>,
        error -> Nullable<Text>,
        finished_at -> Timestamp,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        clinic_id -> Text,
        kind -> Text,
        recipient -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        export_id -> Nullable<Text>,
        created_at -> Timestamp,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_keys (clinic_id, kind, period) {
        clinic_id -> Text,
        kind -> Text,
        period -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mail_settings (clinic_id) {
        clinic_id -> Text,
        frequency -> Nullable<Text>,
        day -> Nullable<Integer>,
        local_time -> Nullable<Text>,
        recipients -> Text,
        authority_email -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mail_resends (failed_id) {
        failed_id -> Text,
        clinic_id -> Text,
        resent_id -> Text,
        resent_by -> Nullable<Text>,
        resent_at -> Timestamp,
    }
}

diesel::table! {
    browser_sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        token_version -> BigInt,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session_pack_removals (session_id, pack_code) {
        session_id -> Text,
        pack_code -> Text,
        clinic_id -> Text,
        removed_by -> Nullable<Text>,
        removed_at -> Timestamp,
        reason -> Text,
    }
}

diesel::table! {
    cycle_imports (id) {
        id -> Text,
        clinic_id -> Text,
        steriliser_id -> Text,
        files -> Integer,
        cycles -> Integer,
        already_imported -> Integer,
        unreadable -> Text,
        imported_by -> Nullable<Text>,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    device_files (id) {
        id -> Text,
        clinic_id -> Text,
        steriliser_id -> Text,
        import_id -> Text,
        sha256 -> Text,
        name -> Text,
        size_bytes -> BigInt,
        format -> Nullable<Text>,
        encoding -> Nullable<Text>,
        content -> Binary,
        uploaded_at -> Timestamp,
    }
}

diesel::table! {
    imported_cycles (id) {
        id -> Text,
        clinic_id -> Text,
        steriliser_id -> Text,
        file_id -> Text,
        import_id -> Text,
        format -> Text,
        cycle_number -> BigInt,
        kind -> Text,
        program_name -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        set_temperature_c -> Nullable<Double>,
        set_hold_seconds -> Nullable<Double>,
        peak_temperature_c -> Nullable<Double>,
        peak_pressure_kpa -> Nullable<Double>,
        hold_seconds -> Nullable<BigInt>,
        device_result -> Text,
        outcome -> Text,
        serial -> Nullable<Text>,
        fingerprint -> Nullable<Text>,
        vendor_check -> Nullable<Text>,
        detail -> Text,
        warnings -> Text,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    csv_mappings (steriliser_id, version) {
        steriliser_id -> Text,
        version -> Integer,
        clinic_id -> Text,
        mapping -> Text,
        recorded_by -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> clinics (clinic_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(audit_events -> clinics (clinic_id));

diesel::allow_tables_to_appear_in_same_query!(
    clinics,
    users,
    memberships,
    refresh_tokens,
    chain_heads,
    audit_events,
    idempotency_keys,
    sterilisers,
    steriliser_status_changes,
    cycles,
    packs,
    spore_tests,
    spore_test_results,
    air_removal_tests,
    lots,
    lot_recalls,
    lot_withdrawals,
    credentials,
    credential_verifications,
    checklist_templates,
    clients,
    sessions,
    session_answers,
    session_packs,
    session_pack_removals,
    browser_sessions,
    session_lots,
    session_starts,
    session_completions,
    incidents,
    incident_follow_ups,
    incident_closures,
    inspector_grants,
    inspector_grant_revocations,
    invitations,
    exports,
    export_results,
    mail_outbox,
    mail_keys,
    mail_settings,
    mail_resends,
    cycle_imports,
    device_files,
    imported_cycles,
    csv_mappings,
);
