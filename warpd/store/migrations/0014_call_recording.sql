-- Call recording per trunk: a trunk's calls are recorded by RTPEngine (its
-- "record call" flag on the offer) when record_calls is set. The CDR says
-- whether the call was recorded, and where: recording is NULL when nothing was
-- asked, 'recorded' with the file RTPEngine named, or 'refused' when RTPEngine
-- did not start one (no recording directory, an error); a refusal never fails
-- the call.

ALTER TABLE sip_trunks ADD COLUMN record_calls boolean NOT NULL DEFAULT false;

ALTER TABLE voice_cdrs
    ADD COLUMN recording text CHECK (recording IN ('recorded', 'refused')),
    ADD COLUMN recording_path text;
