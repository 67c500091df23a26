-- Version 1 of the schema as mentionwatch 0.1 created it on PostgreSQL (schema_v1.sql is the SQLite file).
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
CREATE TABLE mentions (
	id SERIAL NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	external_id VARCHAR(512) NOT NULL, 
	source_id VARCHAR(200) NOT NULL, 
	brand VARCHAR(100) NOT NULL, 
	matched JSON NOT NULL, 
	url TEXT, 
	author VARCHAR(200), 
	title TEXT, 
	text TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE, 
	fetched_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	thread_id VARCHAR(200), 
	parent_id VARCHAR(200), 
	reach INTEGER, 
	extra JSON NOT NULL, 
	classified_at TIMESTAMP WITH TIME ZONE, 
	routed_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_mentions_source_external_id UNIQUE (source, external_id)
);
CREATE INDEX ix_mentions_classified_at ON mentions (classified_at);
CREATE INDEX ix_mentions_brand_created ON mentions (brand, created_at);
CREATE INDEX ix_mentions_routed_at ON mentions (routed_at);
CREATE TABLE cursors (
	source_id VARCHAR(200) NOT NULL, 
	value JSON NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (source_id)
);
CREATE TABLE source_health (
	source_id VARCHAR(200) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	kind VARCHAR(32), 
	message TEXT, 
	since TIMESTAMP WITH TIME ZONE, 
	failures INTEGER NOT NULL, 
	last_success_at TIMESTAMP WITH TIME ZONE, 
	last_attempt_at TIMESTAMP WITH TIME ZONE, 
	retry_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (source_id)
);
CREATE TABLE drop_counts (
	source_id VARCHAR(200) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY (source_id, reason)
);
CREATE TABLE gaps (
	id SERIAL NOT NULL, 
	source_id VARCHAR(200) NOT NULL, 
	window_start TIMESTAMP WITH TIME ZONE, 
	window_end TIMESTAMP WITH TIME ZONE, 
	estimated_count INTEGER, 
	reason TEXT NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE usage (
	"key" VARCHAR(200) NOT NULL, 
	period VARCHAR(32) NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY ("key", period)
);
CREATE TABLE slack_channels (
	name VARCHAR(100) NOT NULL, 
	channel_id VARCHAR(32) NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE labels (
	mention_id INTEGER NOT NULL, 
	model VARCHAR(64) NOT NULL, 
	sentiment VARCHAR(16) NOT NULL, 
	sentiment_scores JSON NOT NULL, 
	intent VARCHAR(16) NOT NULL, 
	intent_scores JSON NOT NULL, 
	needs_reply BOOLEAN NOT NULL, 
	needs_reply_score FLOAT NOT NULL, 
	language VARCHAR(16), 
	low_confidence BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (mention_id, model), 
	FOREIGN KEY(mention_id) REFERENCES mentions (id) ON DELETE CASCADE
);
CREATE TABLE alerts (
	id SERIAL NOT NULL, 
	dedupe_key VARCHAR(300) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	mention_id INTEGER, 
	brand VARCHAR(100), 
	channel VARCHAR(100) NOT NULL, 
	payload JSON NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	sending_at TIMESTAMP WITH TIME ZONE, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	slack_channel_id VARCHAR(32), 
	slack_ts VARCHAR(32), 
	PRIMARY KEY (id), 
	UNIQUE (dedupe_key), 
	FOREIGN KEY(mention_id) REFERENCES mentions (id) ON DELETE SET NULL
);
CREATE INDEX ix_alerts_state_id ON alerts (state, id);
CREATE TABLE responses (
	id SERIAL NOT NULL, 
	mention_id INTEGER NOT NULL, 
	responder VARCHAR(200) NOT NULL, 
	responded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	url TEXT, 
	via VARCHAR(32) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_responses_once UNIQUE (mention_id, via, responder, responded_at), 
	FOREIGN KEY(mention_id) REFERENCES mentions (id) ON DELETE CASCADE
);
