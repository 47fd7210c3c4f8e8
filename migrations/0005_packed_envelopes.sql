-- Envelopes are stored in the compact form of src/mime/packed.rs (a BLOB) instead of JSON
-- (TEXT): FETCH ENVELOPE reads them in place. The rows written before are converted by
-- `store::repack_envelopes` when the store opens; this partial index finds them without a
-- scan, and is empty once they are done.
CREATE INDEX blobs_json_envelope ON blobs(id) WHERE typeof(envelope) = 'text';
