BEGIN TRANSACTION;
CREATE TABLE oc_agent_sessions (
	token_hash VARCHAR(64) NOT NULL, 
	agent_id INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	expires_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (token_hash)
);
CREATE TABLE oc_agents (
	id INTEGER NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	display_name VARCHAR(100) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	branch_id VARCHAR(32), 
	products JSON NOT NULL, 
	languages JSON NOT NULL, 
	active BOOLEAN NOT NULL, 
	last_seen_at DATETIME, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (username)
);
INSERT INTO "oc_agents" VALUES(1,'legacy_jt','老王','scrypt$16384$8$1$R7AI9fVb25Bj-ajBZ1K5Vw==$8WghfhLIbhsaO7UXyIB28hdiu1oB5DTR_2gERpW_Wd4=','agent','JT','["*"]','["mandarin"]',1,NULL,'2026-11-20 02:00:00.000000');
CREATE TABLE oc_branches (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "oc_branches" VALUES('JT','金堂县支行');
INSERT INTO "oc_branches" VALUES('CD','成都分行营业部');
INSERT INTO "oc_branches" VALUES('PD','郫都区支行');
INSERT INTO "oc_branches" VALUES('SL','双流区支行');
INSERT INTO "oc_branches" VALUES('DY','大邑县支行');
CREATE TABLE oc_call_attempts (
	id INTEGER NOT NULL, 
	target_id INTEGER NOT NULL, 
	campaign_id VARCHAR(64) NOT NULL, 
	customer_id VARCHAR(64) NOT NULL, 
	attempt_no INTEGER NOT NULL, 
	call_id VARCHAR(128) NOT NULL, 
	variant VARCHAR(16) NOT NULL, 
	offer_id INTEGER, 
	offer_version INTEGER, 
	offer_terms JSON, 
	status VARCHAR(16) NOT NULL, 
	outcome VARCHAR(32), 
	dialer VARCHAR(64) NOT NULL, 
	lease_until DATETIME NOT NULL, 
	facts JSON NOT NULL, 
	disclosure_proof JSON, 
	handoff_id INTEGER, 
	callback_at DATETIME, 
	started_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_oc_call_attempts_no UNIQUE (target_id, attempt_no), 
	UNIQUE (call_id)
);
INSERT INTO "oc_call_attempts" VALUES(1,2,'legacy-2026-11','C0002',1,'call-legacy-4','A',NULL,NULL,'{"amount_yuan": 30000}','done','no_answer','d1','2026-11-20 02:00:00.000000','{"answered": false}',NULL,NULL,NULL,'2026-11-20 02:00:00.000000','2026-11-20 02:00:30.000000');
CREATE TABLE oc_callbacks (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	customer_id VARCHAR(64), 
	due_at DATETIME NOT NULL, 
	requested_text TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "oc_callbacks" VALUES(1,'call-legacy-3','C0003','2026-11-21 02:00:00.000000','明天下午','scheduled','2026-12-03 00:50:23.976139');
CREATE TABLE oc_calls (
            id VARCHAR(128) PRIMARY KEY,
            customer_id VARCHAR(64) NOT NULL,
            transport VARCHAR(32) NOT NULL,
            outcome VARCHAR(32) NOT NULL,
            ended_by VARCHAR(16) NOT NULL,
            duration_ms INTEGER NOT NULL,
            handoff_id INTEGER,
            recording_path TEXT,
            transcript_path TEXT,
            error TEXT,
            started_at DATETIME NOT NULL,
            ended_at DATETIME NOT NULL
        );
INSERT INTO "oc_calls" VALUES('call-legacy-3','C0003','simulated','callback','bot',42000,NULL,'var/recordings/call-legacy-3.wav','var/recordings/call-legacy-3.json',NULL,'2026-11-20 02:00:00.000000','2026-11-20 02:00:42.000000');
CREATE TABLE oc_campaign_targets (
	id INTEGER NOT NULL, 
	campaign_id VARCHAR(64) NOT NULL, 
	customer_id VARCHAR(64) NOT NULL, 
	variant VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME, 
	last_outcome VARCHAR(32), 
	final_reason TEXT, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_oc_campaign_targets_customer UNIQUE (campaign_id, customer_id)
);
INSERT INTO "oc_campaign_targets" VALUES(1,'legacy-2026-11','C0001','A','pending',0,'2026-11-20 02:00:00.000000',NULL,NULL,'2026-11-20 02:00:00.000000','2026-11-20 02:00:00.000000');
INSERT INTO "oc_campaign_targets" VALUES(2,'legacy-2026-11','C0002','A','pending',0,'2026-11-20 02:00:00.000000',NULL,NULL,'2026-11-20 02:00:00.000000','2026-11-20 02:00:00.000000');
CREATE TABLE oc_campaigns (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	transport VARCHAR(32) NOT NULL, 
	config JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "oc_campaigns" VALUES('legacy-2026-11','金堂县 11月 主动授信','running','simulated','{"window_start": "09:00", "window_end": "20:00", "timezone": "Asia/Shanghai", "holidays": [], "weekdays": [0, 1, 2, 3, 4, 5, 6], "max_attempts_per_week": 3, "min_gap_s": 14400, "retry_backoff_s": [1800, 7200, 86400], "max_attempts": 5, "max_concurrency": 4, "agent_gated": true, "variants": {"A": 1.0, "B": 1.0}, "detect_machine": true, "lease_s": 60, "speed": 1.0}','2026-11-20 02:00:00.000000','2026-11-20 02:00:00.000000');
CREATE TABLE oc_conversations (
	id VARCHAR(128) NOT NULL, 
	customer_id VARCHAR(64), 
	channel VARCHAR(16) NOT NULL, 
	offer_id INTEGER, 
	outcome VARCHAR(32), 
	outcome_reason TEXT, 
	started_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(customer_id) REFERENCES oc_customers (customer_id), 
	FOREIGN KEY(offer_id) REFERENCES oc_offers (id)
);
INSERT INTO "oc_conversations" VALUES('chat-legacy-1','C0001','chat',1,'transferred','customer_requested','2026-12-03 00:50:23.964883','2026-12-03 00:50:23.974413');
CREATE TABLE oc_customers (
	customer_id VARCHAR(64) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	masked_name VARCHAR(100) NOT NULL, 
	gender VARCHAR(1), 
	phone VARCHAR(20) NOT NULL, 
	region VARCHAR(100) NOT NULL, 
	segment VARCHAR(100) NOT NULL, 
	consent BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (customer_id)
);
INSERT INTO "oc_customers" VALUES('C0001','张伟','张**','M','13800138001','金堂县','农户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0002','李秀英','李**','F','13900139002','双流区','医保客户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0003','王建国','王**','M','13700137003','郫都区','个体工商户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0004','刘芳','刘**','F','15000150004','新都区','医保客户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0005','陈志强','陈**','M','15100151005','大邑县','农户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0006','杨桂兰','杨**','F','15200152006','蒲江县','农户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0007','赵军','赵**','M','18600186007','金堂县','代发工资',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0008','黄丽','黄**','F','18700187008','双流区','医保客户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0009','周明','周**','M','18800188009','郫都区','代发工资',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0010','吴秀兰','吴**','F','13500135010','大邑县','农户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0011','徐海','徐**','M','13600136011','新都区','个体工商户',1,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
INSERT INTO "oc_customers" VALUES('C0012','孙淑珍','孙**','F','13300133012','蒲江县','农户',0,'2026-12-03 00:50:23.900533','2026-12-03 00:50:23.900533');
CREATE TABLE oc_do_not_contact (
	id INTEGER NOT NULL, 
	customer_id VARCHAR(64), 
	phone VARCHAR(20), 
	utterance TEXT NOT NULL, 
	conversation_id VARCHAR(128), 
	source VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT oc_dnc_has_key CHECK (customer_id IS NOT NULL OR phone IS NOT NULL)
);
INSERT INTO "oc_do_not_contact" VALUES(1,'C0012','13600136012','别再打了','call-legacy-2','bot','2026-12-03 00:50:23.975394');
CREATE TABLE oc_handoff_events (
	id INTEGER NOT NULL, 
	handoff_id INTEGER NOT NULL, 
	from_status VARCHAR(16), 
	to_status VARCHAR(16) NOT NULL, 
	tier VARCHAR(16) NOT NULL, 
	actor VARCHAR(64) NOT NULL, 
	reason TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "oc_handoff_events" VALUES(1,1,NULL,'queued','branch','bot','customer handed off: customer_requested','2026-11-20 02:00:00.000000');
INSERT INTO "oc_handoff_events" VALUES(2,1,'queued','claimed','branch','agent:1','claimed by 老王','2026-11-20 02:00:05.000000');
INSERT INTO "oc_handoff_events" VALUES(3,1,'claimed','closed','branch','agent:1','closed: applied (已申请)','2026-11-20 02:05:00.000000');
CREATE TABLE oc_handoffs (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	customer_id VARCHAR(64), 
	offer_id INTEGER, 
	channel VARCHAR(16) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	transcript JSON NOT NULL, 
	intents JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, kind VARCHAR(16) NOT NULL DEFAULT 'live', tier VARCHAR(16) NOT NULL DEFAULT 'branch', region VARCHAR(100), branch_id VARCHAR(32), product VARCHAR(100), language VARCHAR(32) NOT NULL DEFAULT 'mandarin', waiting_since DATETIME, claim_deadline DATETIME, callback_due_at DATETIME, claimed_by INTEGER, claimed_at DATETIME, connected_at DATETIME, closed_at DATETIME, agent_outcome VARCHAR(32), agent_note TEXT, updated_at DATETIME, transfer_mode VARCHAR(16), transfer_target VARCHAR(200), transfer_status VARCHAR(16), transferred_at DATETIME, 
	PRIMARY KEY (id)
);
INSERT INTO "oc_handoffs" VALUES(1,'chat-legacy-1','C0001',1,'chat','customer_requested','[{"speaker": "customer", "text": "\u6211\u8981\u7533\u8bf7"}]','["request_handoff"]','closed','2026-11-20 02:00:00.000000','live','branch','金堂县','JT','邮享贷','mandarin','2026-11-20 02:00:00.000000',NULL,NULL,1,'2026-11-20 02:00:05.000000',NULL,'2026-11-20 02:05:00.000000','applied','已申请','2026-11-20 02:05:00.000000',NULL,NULL,NULL,NULL);
CREATE TABLE oc_messages (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(128) NOT NULL, 
	sender VARCHAR(16) NOT NULL, 
	text TEXT NOT NULL, 
	client_msg_id VARCHAR(64), 
	handoff_id INTEGER, 
	agent_id INTEGER, 
	data JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_oc_messages_client_id UNIQUE (conversation_id, client_msg_id)
);
INSERT INTO "oc_messages" VALUES(1,'chat-legacy-1','customer','我要申请','m1',NULL,NULL,'{}','2026-11-20 02:00:00.000000');
CREATE TABLE oc_offers (
	id INTEGER NOT NULL, 
	customer_id VARCHAR(64) NOT NULL, 
	product VARCHAR(100) NOT NULL, 
	amount_yuan INTEGER NOT NULL, 
	rate_min INTEGER NOT NULL, 
	rate_max INTEGER NOT NULL, 
	term_months INTEGER NOT NULL, 
	valid_until DATE NOT NULL, 
	version INTEGER NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(customer_id) REFERENCES oc_customers (customer_id)
);
INSERT INTO "oc_offers" VALUES(1,'C0001','邮享贷',50000,360,720,12,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(2,'C0002','医保贷',30000,385,650,12,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(3,'C0003','小额信用贷',100000,420,840,24,'2027-06-30',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(4,'C0004','医保贷',20000,385,650,12,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(5,'C0005','邮享贷',80000,360,720,36,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(6,'C0006','邮享贷',15000,360,720,12,'2027-09-30',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(7,'C0007','邮享贷',150000,345,690,36,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(8,'C0008','医保贷',50000,385,650,24,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(9,'C0009','邮享贷',200000,345,690,60,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(10,'C0010','小额信用贷',50000,420,840,12,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(11,'C0011','小额信用贷',300000,420,840,36,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
INSERT INTO "oc_offers" VALUES(12,'C0012','邮享贷',10000,360,720,12,'2027-12-31',1,1,'2026-12-03 00:50:23.900533');
CREATE TABLE oc_region_branches (
	region VARCHAR(100) NOT NULL, 
	branch_id VARCHAR(32) NOT NULL, 
	distance_km FLOAT NOT NULL, 
	PRIMARY KEY (region, branch_id)
);
INSERT INTO "oc_region_branches" VALUES('金堂县','JT',3.0);
INSERT INTO "oc_region_branches" VALUES('金堂县','CD',45.0);
INSERT INTO "oc_region_branches" VALUES('金堂县','PD',55.0);
INSERT INTO "oc_region_branches" VALUES('金堂县','SL',55.0);
INSERT INTO "oc_region_branches" VALUES('金堂县','DY',95.0);
INSERT INTO "oc_region_branches" VALUES('双流区','SL',2.0);
INSERT INTO "oc_region_branches" VALUES('双流区','CD',18.0);
INSERT INTO "oc_region_branches" VALUES('双流区','PD',35.0);
INSERT INTO "oc_region_branches" VALUES('双流区','JT',55.0);
INSERT INTO "oc_region_branches" VALUES('双流区','DY',60.0);
INSERT INTO "oc_region_branches" VALUES('郫都区','PD',2.0);
INSERT INTO "oc_region_branches" VALUES('郫都区','CD',22.0);
INSERT INTO "oc_region_branches" VALUES('郫都区','SL',35.0);
INSERT INTO "oc_region_branches" VALUES('郫都区','DY',50.0);
INSERT INTO "oc_region_branches" VALUES('郫都区','JT',55.0);
INSERT INTO "oc_region_branches" VALUES('新都区','CD',18.0);
INSERT INTO "oc_region_branches" VALUES('新都区','PD',25.0);
INSERT INTO "oc_region_branches" VALUES('新都区','JT',28.0);
INSERT INTO "oc_region_branches" VALUES('新都区','SL',35.0);
INSERT INTO "oc_region_branches" VALUES('新都区','DY',65.0);
INSERT INTO "oc_region_branches" VALUES('大邑县','DY',2.0);
INSERT INTO "oc_region_branches" VALUES('大邑县','PD',45.0);
INSERT INTO "oc_region_branches" VALUES('大邑县','SL',50.0);
INSERT INTO "oc_region_branches" VALUES('大邑县','CD',60.0);
INSERT INTO "oc_region_branches" VALUES('大邑县','JT',95.0);
INSERT INTO "oc_region_branches" VALUES('蒲江县','DY',45.0);
INSERT INTO "oc_region_branches" VALUES('蒲江县','SL',60.0);
INSERT INTO "oc_region_branches" VALUES('蒲江县','PD',80.0);
INSERT INTO "oc_region_branches" VALUES('蒲江县','CD',85.0);
INSERT INTO "oc_region_branches" VALUES('蒲江县','JT',120.0);
INSERT INTO "oc_region_branches" VALUES('锦江区','CD',2.0);
INSERT INTO "oc_region_branches" VALUES('锦江区','SL',18.0);
INSERT INTO "oc_region_branches" VALUES('锦江区','PD',22.0);
INSERT INTO "oc_region_branches" VALUES('锦江区','JT',45.0);
INSERT INTO "oc_region_branches" VALUES('锦江区','DY',60.0);
CREATE TABLE oc_schema_migrations (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "oc_schema_migrations" VALUES(1,'2026-12-03 00:50:23.853066');
INSERT INTO "oc_schema_migrations" VALUES(2,'2026-12-03 00:50:23.854356');
INSERT INTO "oc_schema_migrations" VALUES(3,'2026-12-03 00:50:23.862837');
INSERT INTO "oc_schema_migrations" VALUES(4,'2026-12-03 00:50:23.882238');
INSERT INTO "oc_schema_migrations" VALUES(5,'2026-12-03 00:50:23.883733');
CREATE INDEX ix_oc_customers_phone ON oc_customers (phone);
CREATE INDEX ix_oc_callbacks_conversation_id ON oc_callbacks (conversation_id);
CREATE INDEX ix_oc_callbacks_customer_id ON oc_callbacks (customer_id);
CREATE INDEX ix_oc_callbacks_due_at ON oc_callbacks (due_at);
CREATE INDEX ix_oc_do_not_contact_customer_id ON oc_do_not_contact (customer_id);
CREATE INDEX ix_oc_do_not_contact_phone ON oc_do_not_contact (phone);
CREATE INDEX ix_oc_offers_customer_id ON oc_offers (customer_id);
CREATE INDEX ix_oc_conversations_customer_id ON oc_conversations (customer_id);
CREATE INDEX ix_oc_handoffs_conversation_id ON oc_handoffs (conversation_id);
CREATE INDEX ix_oc_handoffs_customer_id ON oc_handoffs (customer_id);
CREATE INDEX ix_oc_calls_customer_id ON oc_calls (customer_id);
CREATE INDEX ix_oc_handoffs_status ON oc_handoffs (status);
CREATE INDEX ix_oc_handoff_events_handoff_id ON oc_handoff_events (handoff_id);
CREATE INDEX ix_oc_messages_conversation ON oc_messages (conversation_id, id);
CREATE INDEX ix_oc_agent_sessions_agent_id ON oc_agent_sessions (agent_id);
CREATE INDEX ix_oc_campaign_targets_due ON oc_campaign_targets (campaign_id, status, next_attempt_at);
CREATE INDEX ix_oc_call_attempts_status ON oc_call_attempts (status, lease_until);
CREATE INDEX ix_oc_call_attempts_campaign_id ON oc_call_attempts (campaign_id);
CREATE INDEX ix_oc_call_attempts_customer_id ON oc_call_attempts (customer_id);
COMMIT;
