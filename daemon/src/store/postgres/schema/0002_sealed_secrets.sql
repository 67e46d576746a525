-- The TOTP secret leaves the record column: `sealed_secret` holds it sealed under the fleet
-- key (seal::Sealed, "v1:KEYID:NONCE:CIPHERTEXT"), and the record (encoding 2) holds the
-- rest, so a dump of this database holds no secret in clear.
ALTER TABLE users ADD COLUMN sealed_secret text;

-- The key that seals the rows: its public id and a verifier (seal::FleetKey), never the key.
-- One row. A host whose keys do not include it with this verifier serves no fleet user.
-- Recorded by the first host to connect, changed by `twofactord storage rotate-key`.
-- The daemon's role needs: GRANT SELECT, INSERT, UPDATE ON fleet_key.
CREATE TABLE fleet_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_id text NOT NULL,
    verifier text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
