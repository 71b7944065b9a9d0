// One schema for both backends; the migrations in migrations/sqlite and migrations/postgres
// must produce these columns (tests/migrations.rs checks that they do).

diesel::table! {
    clinics (id) {
        id -> Text,
        name -> Text,
        timezone -> Text,
        jurisdiction -> Text,
        address -> Nullable<Text>,
        registration_number -> Nullable<Text>,
        created_at -> Timestamp,
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
);
