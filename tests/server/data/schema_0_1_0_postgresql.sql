-- The schema of greenflame 0.1.0 (before migrations) on postgresql, frozen as test data: the DDL that
-- release's create_all calls executed (storage, then pipeline_store, then tickets.store), captured
-- from SQLAlchemy on a real postgresql database at commit c7f86f9. Never edit: it is the past.

CREATE TABLE groups (
	name VARCHAR(128) NOT NULL,
	ingest_key_sha256 VARCHAR(64) NOT NULL,
	created_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (name),
	UNIQUE (ingest_key_sha256)
);

CREATE TABLE profiles (
	id VARCHAR(32) NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	start_time_unix_ns BIGINT NOT NULL,
	duration_ns BIGINT NOT NULL,
	received_unix_ns BIGINT NOT NULL,
	idempotency_key VARCHAR(128),
	blob_key VARCHAR(200) NOT NULL,
	stack_count INTEGER NOT NULL,
	wall_samples BIGINT NOT NULL,
	cpu_samples BIGINT NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_profiles_group_idempotency UNIQUE (group_name, idempotency_key),
	FOREIGN KEY(group_name) REFERENCES groups (name)
);

CREATE INDEX ix_profiles_group_start ON profiles (group_name, start_time_unix_ns);

CREATE TABLE analysis_state (
	group_name VARCHAR(128) NOT NULL,
	lease_token VARCHAR(32),
	lease_owner VARCHAR(200),
	lease_until_unix_ns BIGINT,
	analysed_count BIGINT NOT NULL,
	analysed_received_ns BIGINT NOT NULL,
	force_serial INTEGER NOT NULL,
	analysed_force_serial INTEGER NOT NULL,
	last_started_unix_ns BIGINT,
	last_finished_unix_ns BIGINT,
	last_error TEXT,
	last_summary_json TEXT,
	runs INTEGER NOT NULL,
	PRIMARY KEY (group_name)
);

CREATE TABLE analysis_runs (
	id SERIAL NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	owner VARCHAR(200) NOT NULL,
	generation_count BIGINT NOT NULL,
	generation_received_ns BIGINT NOT NULL,
	started_unix_ns BIGINT NOT NULL,
	finished_unix_ns BIGINT,
	error TEXT,
	PRIMARY KEY (id)
);

CREATE INDEX ix_analysis_runs_group ON analysis_runs (group_name, id);

CREATE TABLE finding_states (
	id SERIAL NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	fingerprint_key VARCHAR(32) NOT NULL,
	fingerprint TEXT NOT NULL,
	rule VARCHAR(128) NOT NULL,
	title VARCHAR(300) NOT NULL,
	state VARCHAR(16) NOT NULL,
	first_seen_unix_ns BIGINT NOT NULL,
	last_seen_unix_ns BIGINT NOT NULL,
	resolved_unix_ns BIGINT,
	finding_json TEXT NOT NULL,
	record_json TEXT NOT NULL,
	updated_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_finding_states_finding UNIQUE (group_name, fingerprint_key)
);

CREATE TABLE anomalies (
	id VARCHAR(32) NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	frame TEXT NOT NULL,
	metric VARCHAR(64) NOT NULL,
	start_unix_s BIGINT NOT NULL,
	end_unix_s BIGINT,
	current INTEGER NOT NULL,
	data_json TEXT NOT NULL,
	first_reported_unix_ns BIGINT NOT NULL,
	last_reported_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (id)
);

CREATE INDEX ix_anomalies_group ON anomalies (group_name, start_unix_s);

CREATE TABLE group_channels (
	group_name VARCHAR(128) NOT NULL,
	channels_json TEXT NOT NULL,
	updated_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (group_name)
);

CREATE TABLE anomaly_votes (
	id SERIAL NOT NULL,
	anomaly_id VARCHAR(32) NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	useful INTEGER NOT NULL,
	created_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(anomaly_id) REFERENCES anomalies (id)
);

CREATE INDEX ix_anomaly_votes_group ON anomaly_votes (group_name, id);

CREATE TABLE ticket_links (
	id SERIAL NOT NULL,
	group_name VARCHAR(128) NOT NULL,
	channel VARCHAR(300) NOT NULL,
	fingerprint_key VARCHAR(32) NOT NULL,
	fingerprint TEXT NOT NULL,
	rule VARCHAR(128) NOT NULL,
	title VARCHAR(300) NOT NULL,
	ticket_id VARCHAR(128),
	url VARCHAR(1000),
	state VARCHAR(16),
	numbers_json TEXT,
	last_action VARCHAR(16),
	last_error TEXT,
	attempts INTEGER NOT NULL,
	next_attempt_unix_ns BIGINT,
	lease_token VARCHAR(32),
	lease_until_unix_ns BIGINT,
	created_unix_ns BIGINT NOT NULL,
	updated_unix_ns BIGINT NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_ticket_links_finding UNIQUE (group_name, channel, fingerprint_key)
);
