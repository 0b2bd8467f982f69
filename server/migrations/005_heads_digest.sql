-- Each document's heads, digested (schema::wire::heads_digest, hex), kept in
-- the commit that moves them: a reconnecting device sends the digests of
-- what it holds and the relay names the documents that changed, so the
-- device need not sync every document to find out.
ALTER TABLE documents ADD COLUMN heads_digest TEXT;
