--
-- PostgreSQL database dump
--

\restrict yOUMsiXAluovZaN6f0aQxolfWmqFKHeR1OtzHITxMyASINtPghmbouvQdxyCO3K

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: oc_agent_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_agent_sessions (
    token_hash character varying(64) NOT NULL,
    agent_id integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone
);


--
-- Name: oc_agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_agents (
    id integer NOT NULL,
    username character varying(64) NOT NULL,
    display_name character varying(100) NOT NULL,
    password_hash character varying(256) NOT NULL,
    role character varying(16) NOT NULL,
    branch_id character varying(32),
    products json NOT NULL,
    languages json NOT NULL,
    active boolean NOT NULL,
    last_seen_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: oc_agents_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_agents_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_agents_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_agents_id_seq OWNED BY public.oc_agents.id;


--
-- Name: oc_branches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_branches (
    id character varying(32) NOT NULL,
    name character varying(100) NOT NULL
);


--
-- Name: oc_call_attempts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_call_attempts (
    id integer NOT NULL,
    target_id integer NOT NULL,
    campaign_id character varying(64) NOT NULL,
    customer_id character varying(64) NOT NULL,
    attempt_no integer NOT NULL,
    call_id character varying(128) NOT NULL,
    variant character varying(16) NOT NULL,
    offer_id integer,
    offer_version integer,
    offer_terms json,
    status character varying(16) NOT NULL,
    outcome character varying(32),
    dialer character varying(64) NOT NULL,
    lease_until timestamp with time zone NOT NULL,
    facts json NOT NULL,
    disclosure_proof json,
    handoff_id integer,
    callback_at timestamp with time zone,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone
);


--
-- Name: oc_call_attempts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_call_attempts_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_call_attempts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_call_attempts_id_seq OWNED BY public.oc_call_attempts.id;


--
-- Name: oc_callbacks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_callbacks (
    id integer NOT NULL,
    conversation_id character varying(128) NOT NULL,
    customer_id character varying(64),
    due_at timestamp with time zone NOT NULL,
    requested_text text NOT NULL,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: oc_callbacks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_callbacks_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_callbacks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_callbacks_id_seq OWNED BY public.oc_callbacks.id;


--
-- Name: oc_calls; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_calls (
    id character varying(128) NOT NULL,
    customer_id character varying(64) NOT NULL,
    transport character varying(32) NOT NULL,
    outcome character varying(32) NOT NULL,
    ended_by character varying(16) NOT NULL,
    duration_ms integer NOT NULL,
    handoff_id integer,
    recording_path text,
    transcript_path text,
    error text,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone NOT NULL
);


--
-- Name: oc_campaign_targets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_campaign_targets (
    id integer NOT NULL,
    campaign_id character varying(64) NOT NULL,
    customer_id character varying(64) NOT NULL,
    variant character varying(16) NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at timestamp with time zone,
    last_outcome character varying(32),
    final_reason text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: oc_campaign_targets_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_campaign_targets_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_campaign_targets_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_campaign_targets_id_seq OWNED BY public.oc_campaign_targets.id;


--
-- Name: oc_campaigns; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_campaigns (
    id character varying(64) NOT NULL,
    name character varying(200) NOT NULL,
    status character varying(16) NOT NULL,
    transport character varying(32) NOT NULL,
    config json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: oc_conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_conversations (
    id character varying(128) NOT NULL,
    customer_id character varying(64),
    channel character varying(16) NOT NULL,
    offer_id integer,
    outcome character varying(32),
    outcome_reason text,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone
);


--
-- Name: oc_customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_customers (
    customer_id character varying(64) NOT NULL,
    name character varying(100) NOT NULL,
    masked_name character varying(100) NOT NULL,
    gender character varying(1),
    phone character varying(20) NOT NULL,
    region character varying(100) NOT NULL,
    segment character varying(100) NOT NULL,
    consent boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: oc_do_not_contact; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_do_not_contact (
    id integer NOT NULL,
    customer_id character varying(64),
    phone character varying(20),
    utterance text NOT NULL,
    conversation_id character varying(128),
    source character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT oc_dnc_has_key CHECK (((customer_id IS NOT NULL) OR (phone IS NOT NULL)))
);


--
-- Name: oc_do_not_contact_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_do_not_contact_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_do_not_contact_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_do_not_contact_id_seq OWNED BY public.oc_do_not_contact.id;


--
-- Name: oc_handoff_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_handoff_events (
    id integer NOT NULL,
    handoff_id integer NOT NULL,
    from_status character varying(16),
    to_status character varying(16) NOT NULL,
    tier character varying(16) NOT NULL,
    actor character varying(64) NOT NULL,
    reason text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: oc_handoff_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_handoff_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_handoff_events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_handoff_events_id_seq OWNED BY public.oc_handoff_events.id;


--
-- Name: oc_handoffs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_handoffs (
    id integer NOT NULL,
    conversation_id character varying(128) NOT NULL,
    customer_id character varying(64),
    offer_id integer,
    channel character varying(16) NOT NULL,
    reason character varying(64) NOT NULL,
    transcript json NOT NULL,
    intents json NOT NULL,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(16) DEFAULT 'live'::character varying NOT NULL,
    tier character varying(16) DEFAULT 'branch'::character varying NOT NULL,
    region character varying(100),
    branch_id character varying(32),
    product character varying(100),
    language character varying(32) DEFAULT 'mandarin'::character varying NOT NULL,
    waiting_since timestamp with time zone,
    claim_deadline timestamp with time zone,
    callback_due_at timestamp with time zone,
    claimed_by integer,
    claimed_at timestamp with time zone,
    connected_at timestamp with time zone,
    closed_at timestamp with time zone,
    agent_outcome character varying(32),
    agent_note text,
    updated_at timestamp with time zone,
    transfer_mode character varying(16),
    transfer_target character varying(200),
    transfer_status character varying(16),
    transferred_at timestamp with time zone
);


--
-- Name: oc_handoffs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_handoffs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_handoffs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_handoffs_id_seq OWNED BY public.oc_handoffs.id;


--
-- Name: oc_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_messages (
    id integer NOT NULL,
    conversation_id character varying(128) NOT NULL,
    sender character varying(16) NOT NULL,
    text text NOT NULL,
    client_msg_id character varying(64),
    handoff_id integer,
    agent_id integer,
    data json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: oc_messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_messages_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_messages_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_messages_id_seq OWNED BY public.oc_messages.id;


--
-- Name: oc_offers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_offers (
    id integer NOT NULL,
    customer_id character varying(64) NOT NULL,
    product character varying(100) NOT NULL,
    amount_yuan integer NOT NULL,
    rate_min integer NOT NULL,
    rate_max integer NOT NULL,
    term_months integer NOT NULL,
    valid_until date NOT NULL,
    version integer NOT NULL,
    active boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: oc_offers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_offers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_offers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_offers_id_seq OWNED BY public.oc_offers.id;


--
-- Name: oc_region_branches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_region_branches (
    region character varying(100) NOT NULL,
    branch_id character varying(32) NOT NULL,
    distance_km double precision NOT NULL
);


--
-- Name: oc_schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.oc_schema_migrations (
    version integer NOT NULL,
    applied_at timestamp with time zone NOT NULL
);


--
-- Name: oc_schema_migrations_version_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.oc_schema_migrations_version_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: oc_schema_migrations_version_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.oc_schema_migrations_version_seq OWNED BY public.oc_schema_migrations.version;


--
-- Name: oc_agents id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_agents ALTER COLUMN id SET DEFAULT nextval('public.oc_agents_id_seq'::regclass);


--
-- Name: oc_call_attempts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_call_attempts ALTER COLUMN id SET DEFAULT nextval('public.oc_call_attempts_id_seq'::regclass);


--
-- Name: oc_callbacks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_callbacks ALTER COLUMN id SET DEFAULT nextval('public.oc_callbacks_id_seq'::regclass);


--
-- Name: oc_campaign_targets id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_campaign_targets ALTER COLUMN id SET DEFAULT nextval('public.oc_campaign_targets_id_seq'::regclass);


--
-- Name: oc_do_not_contact id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_do_not_contact ALTER COLUMN id SET DEFAULT nextval('public.oc_do_not_contact_id_seq'::regclass);


--
-- Name: oc_handoff_events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_handoff_events ALTER COLUMN id SET DEFAULT nextval('public.oc_handoff_events_id_seq'::regclass);


--
-- Name: oc_handoffs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_handoffs ALTER COLUMN id SET DEFAULT nextval('public.oc_handoffs_id_seq'::regclass);


--
-- Name: oc_messages id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_messages ALTER COLUMN id SET DEFAULT nextval('public.oc_messages_id_seq'::regclass);


--
-- Name: oc_offers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_offers ALTER COLUMN id SET DEFAULT nextval('public.oc_offers_id_seq'::regclass);


--
-- Name: oc_schema_migrations version; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_schema_migrations ALTER COLUMN version SET DEFAULT nextval('public.oc_schema_migrations_version_seq'::regclass);


--
-- Data for Name: oc_agent_sessions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_agent_sessions (token_hash, agent_id, created_at, expires_at, revoked_at) FROM stdin;
\.


--
-- Data for Name: oc_agents; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_agents (id, username, display_name, password_hash, role, branch_id, products, languages, active, last_seen_at, created_at) FROM stdin;
1	legacy_jt	老王	scrypt$16384$8$1$qG2U637dseHKf3zMWX97Bg==$VZ8G3mDvJeKmzAsoO1t06UL6yUzxtiJp1pjXKQB_lJY=	agent	JT	["*"]	["mandarin"]	t	\N	2026-11-20 02:00:00+00
\.


--
-- Data for Name: oc_branches; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_branches (id, name) FROM stdin;
JT	金堂县支行
CD	成都分行营业部
PD	郫都区支行
SL	双流区支行
DY	大邑县支行
\.


--
-- Data for Name: oc_call_attempts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_call_attempts (id, target_id, campaign_id, customer_id, attempt_no, call_id, variant, offer_id, offer_version, offer_terms, status, outcome, dialer, lease_until, facts, disclosure_proof, handoff_id, callback_at, started_at, ended_at) FROM stdin;
1	2	legacy-2026-11	C0002	1	call-legacy-4	A	\N	\N	{"amount_yuan": 30000}	done	no_answer	d1	2026-11-20 02:00:00+00	{"answered": false}	\N	\N	\N	2026-11-20 02:00:00+00	2026-11-20 02:00:30+00
\.


--
-- Data for Name: oc_callbacks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_callbacks (id, conversation_id, customer_id, due_at, requested_text, status, created_at) FROM stdin;
1	call-legacy-3	C0003	2026-11-21 02:00:00+00	明天下午	scheduled	2026-12-03 00:50:31.812513+00
\.


--
-- Data for Name: oc_calls; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_calls (id, customer_id, transport, outcome, ended_by, duration_ms, handoff_id, recording_path, transcript_path, error, started_at, ended_at) FROM stdin;
call-legacy-3	C0003	simulated	callback	bot	42000	\N	var/recordings/call-legacy-3.wav	var/recordings/call-legacy-3.json	\N	2026-11-20 02:00:00+00	2026-11-20 02:00:42+00
\.


--
-- Data for Name: oc_campaign_targets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_campaign_targets (id, campaign_id, customer_id, variant, status, attempts, next_attempt_at, last_outcome, final_reason, created_at, updated_at) FROM stdin;
1	legacy-2026-11	C0001	A	pending	0	2026-11-20 02:00:00+00	\N	\N	2026-11-20 02:00:00+00	2026-11-20 02:00:00+00
2	legacy-2026-11	C0002	A	pending	0	2026-11-20 02:00:00+00	\N	\N	2026-11-20 02:00:00+00	2026-11-20 02:00:00+00
\.


--
-- Data for Name: oc_campaigns; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_campaigns (id, name, status, transport, config, created_at, updated_at) FROM stdin;
legacy-2026-11	金堂县 11月 主动授信	running	simulated	{"window_start": "09:00", "window_end": "20:00", "timezone": "Asia/Shanghai", "holidays": [], "weekdays": [0, 1, 2, 3, 4, 5, 6], "max_attempts_per_week": 3, "min_gap_s": 14400, "retry_backoff_s": [1800, 7200, 86400], "max_attempts": 5, "max_concurrency": 4, "agent_gated": true, "variants": {"A": 1.0, "B": 1.0}, "detect_machine": true, "lease_s": 60, "speed": 1.0}	2026-11-20 02:00:00+00	2026-11-20 02:00:00+00
\.


--
-- Data for Name: oc_conversations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_conversations (id, customer_id, channel, offer_id, outcome, outcome_reason, started_at, ended_at) FROM stdin;
chat-legacy-1	C0001	chat	1	transferred	customer_requested	2026-12-03 00:50:31.792275+00	2026-12-03 00:50:31.809981+00
\.


--
-- Data for Name: oc_customers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_customers (customer_id, name, masked_name, gender, phone, region, segment, consent, created_at, updated_at) FROM stdin;
C0001	张伟	张**	M	13800138001	金堂县	农户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0002	李秀英	李**	F	13900139002	双流区	医保客户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0003	王建国	王**	M	13700137003	郫都区	个体工商户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0004	刘芳	刘**	F	15000150004	新都区	医保客户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0005	陈志强	陈**	M	15100151005	大邑县	农户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0006	杨桂兰	杨**	F	15200152006	蒲江县	农户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0007	赵军	赵**	M	18600186007	金堂县	代发工资	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0008	黄丽	黄**	F	18700187008	双流区	医保客户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0009	周明	周**	M	18800188009	郫都区	代发工资	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0010	吴秀兰	吴**	F	13500135010	大邑县	农户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0011	徐海	徐**	M	13600136011	新都区	个体工商户	t	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
C0012	孙淑珍	孙**	F	13300133012	蒲江县	农户	f	2026-12-03 00:50:31.702045+00	2026-12-03 00:50:31.702045+00
\.


--
-- Data for Name: oc_do_not_contact; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_do_not_contact (id, customer_id, phone, utterance, conversation_id, source, created_at) FROM stdin;
1	C0012	13600136012	别再打了	call-legacy-2	bot	2026-12-03 00:50:31.811256+00
\.


--
-- Data for Name: oc_handoff_events; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_handoff_events (id, handoff_id, from_status, to_status, tier, actor, reason, created_at) FROM stdin;
1	1	\N	queued	branch	bot	customer handed off: customer_requested	2026-11-20 02:00:00+00
2	1	queued	claimed	branch	agent:1	claimed by 老王	2026-11-20 02:00:05+00
3	1	claimed	closed	branch	agent:1	closed: applied (已申请)	2026-11-20 02:05:00+00
\.


--
-- Data for Name: oc_handoffs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_handoffs (id, conversation_id, customer_id, offer_id, channel, reason, transcript, intents, status, created_at, kind, tier, region, branch_id, product, language, waiting_since, claim_deadline, callback_due_at, claimed_by, claimed_at, connected_at, closed_at, agent_outcome, agent_note, updated_at, transfer_mode, transfer_target, transfer_status, transferred_at) FROM stdin;
1	chat-legacy-1	C0001	1	chat	customer_requested	[{"speaker": "customer", "text": "\\u6211\\u8981\\u7533\\u8bf7"}]	["request_handoff"]	closed	2026-11-20 02:00:00+00	live	branch	金堂县	JT	邮享贷	mandarin	2026-11-20 02:00:00+00	\N	\N	1	2026-11-20 02:00:05+00	\N	2026-11-20 02:05:00+00	applied	已申请	2026-11-20 02:05:00+00	\N	\N	\N	\N
\.


--
-- Data for Name: oc_messages; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_messages (id, conversation_id, sender, text, client_msg_id, handoff_id, agent_id, data, created_at) FROM stdin;
1	chat-legacy-1	customer	我要申请	m1	\N	\N	{}	2026-11-20 02:00:00+00
\.


--
-- Data for Name: oc_offers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_offers (id, customer_id, product, amount_yuan, rate_min, rate_max, term_months, valid_until, version, active, created_at) FROM stdin;
1	C0001	邮享贷	50000	360	720	12	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
2	C0002	医保贷	30000	385	650	12	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
3	C0003	小额信用贷	100000	420	840	24	2027-06-30	1	t	2026-12-03 00:50:31.702045+00
4	C0004	医保贷	20000	385	650	12	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
5	C0005	邮享贷	80000	360	720	36	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
6	C0006	邮享贷	15000	360	720	12	2027-09-30	1	t	2026-12-03 00:50:31.702045+00
7	C0007	邮享贷	150000	345	690	36	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
8	C0008	医保贷	50000	385	650	24	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
9	C0009	邮享贷	200000	345	690	60	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
10	C0010	小额信用贷	50000	420	840	12	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
11	C0011	小额信用贷	300000	420	840	36	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
12	C0012	邮享贷	10000	360	720	12	2027-12-31	1	t	2026-12-03 00:50:31.702045+00
\.


--
-- Data for Name: oc_region_branches; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_region_branches (region, branch_id, distance_km) FROM stdin;
金堂县	JT	3
金堂县	CD	45
金堂县	PD	55
金堂县	SL	55
金堂县	DY	95
双流区	SL	2
双流区	CD	18
双流区	PD	35
双流区	JT	55
双流区	DY	60
郫都区	PD	2
郫都区	CD	22
郫都区	SL	35
郫都区	DY	50
郫都区	JT	55
新都区	CD	18
新都区	PD	25
新都区	JT	28
新都区	SL	35
新都区	DY	65
大邑县	DY	2
大邑县	PD	45
大邑县	SL	50
大邑县	CD	60
大邑县	JT	95
蒲江县	DY	45
蒲江县	SL	60
蒲江县	PD	80
蒲江县	CD	85
蒲江县	JT	120
锦江区	CD	2
锦江区	SL	18
锦江区	PD	22
锦江区	JT	45
锦江区	DY	60
\.


--
-- Data for Name: oc_schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.oc_schema_migrations (version, applied_at) FROM stdin;
1	2026-12-03 00:50:31.61085+00
2	2026-12-03 00:50:31.61407+00
3	2026-12-03 00:50:31.660533+00
4	2026-12-03 00:50:31.67674+00
5	2026-12-03 00:50:31.678938+00
\.


--
-- Name: oc_agents_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_agents_id_seq', 1, true);


--
-- Name: oc_call_attempts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_call_attempts_id_seq', 1, true);


--
-- Name: oc_callbacks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_callbacks_id_seq', 1, true);


--
-- Name: oc_campaign_targets_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_campaign_targets_id_seq', 2, true);


--
-- Name: oc_do_not_contact_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_do_not_contact_id_seq', 1, true);


--
-- Name: oc_handoff_events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_handoff_events_id_seq', 3, true);


--
-- Name: oc_handoffs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_handoffs_id_seq', 1, true);


--
-- Name: oc_messages_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_messages_id_seq', 1, true);


--
-- Name: oc_offers_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_offers_id_seq', 12, true);


--
-- Name: oc_schema_migrations_version_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.oc_schema_migrations_version_seq', 1, false);


--
-- Name: oc_agent_sessions oc_agent_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_agent_sessions
    ADD CONSTRAINT oc_agent_sessions_pkey PRIMARY KEY (token_hash);


--
-- Name: oc_agents oc_agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_agents
    ADD CONSTRAINT oc_agents_pkey PRIMARY KEY (id);


--
-- Name: oc_agents oc_agents_username_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_agents
    ADD CONSTRAINT oc_agents_username_key UNIQUE (username);


--
-- Name: oc_branches oc_branches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_branches
    ADD CONSTRAINT oc_branches_pkey PRIMARY KEY (id);


--
-- Name: oc_call_attempts oc_call_attempts_call_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_call_attempts
    ADD CONSTRAINT oc_call_attempts_call_id_key UNIQUE (call_id);


--
-- Name: oc_call_attempts oc_call_attempts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_call_attempts
    ADD CONSTRAINT oc_call_attempts_pkey PRIMARY KEY (id);


--
-- Name: oc_callbacks oc_callbacks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_callbacks
    ADD CONSTRAINT oc_callbacks_pkey PRIMARY KEY (id);


--
-- Name: oc_calls oc_calls_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_calls
    ADD CONSTRAINT oc_calls_pkey PRIMARY KEY (id);


--
-- Name: oc_campaign_targets oc_campaign_targets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_campaign_targets
    ADD CONSTRAINT oc_campaign_targets_pkey PRIMARY KEY (id);


--
-- Name: oc_campaigns oc_campaigns_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_campaigns
    ADD CONSTRAINT oc_campaigns_pkey PRIMARY KEY (id);


--
-- Name: oc_conversations oc_conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_conversations
    ADD CONSTRAINT oc_conversations_pkey PRIMARY KEY (id);


--
-- Name: oc_customers oc_customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_customers
    ADD CONSTRAINT oc_customers_pkey PRIMARY KEY (customer_id);


--
-- Name: oc_do_not_contact oc_do_not_contact_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_do_not_contact
    ADD CONSTRAINT oc_do_not_contact_pkey PRIMARY KEY (id);


--
-- Name: oc_handoff_events oc_handoff_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_handoff_events
    ADD CONSTRAINT oc_handoff_events_pkey PRIMARY KEY (id);


--
-- Name: oc_handoffs oc_handoffs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_handoffs
    ADD CONSTRAINT oc_handoffs_pkey PRIMARY KEY (id);


--
-- Name: oc_messages oc_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_messages
    ADD CONSTRAINT oc_messages_pkey PRIMARY KEY (id);


--
-- Name: oc_offers oc_offers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_offers
    ADD CONSTRAINT oc_offers_pkey PRIMARY KEY (id);


--
-- Name: oc_region_branches oc_region_branches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_region_branches
    ADD CONSTRAINT oc_region_branches_pkey PRIMARY KEY (region, branch_id);


--
-- Name: oc_schema_migrations oc_schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_schema_migrations
    ADD CONSTRAINT oc_schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: oc_call_attempts uq_oc_call_attempts_no; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_call_attempts
    ADD CONSTRAINT uq_oc_call_attempts_no UNIQUE (target_id, attempt_no);


--
-- Name: oc_campaign_targets uq_oc_campaign_targets_customer; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_campaign_targets
    ADD CONSTRAINT uq_oc_campaign_targets_customer UNIQUE (campaign_id, customer_id);


--
-- Name: oc_messages uq_oc_messages_client_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_messages
    ADD CONSTRAINT uq_oc_messages_client_id UNIQUE (conversation_id, client_msg_id);


--
-- Name: ix_oc_agent_sessions_agent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_agent_sessions_agent_id ON public.oc_agent_sessions USING btree (agent_id);


--
-- Name: ix_oc_call_attempts_campaign_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_call_attempts_campaign_id ON public.oc_call_attempts USING btree (campaign_id);


--
-- Name: ix_oc_call_attempts_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_call_attempts_customer_id ON public.oc_call_attempts USING btree (customer_id);


--
-- Name: ix_oc_call_attempts_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_call_attempts_status ON public.oc_call_attempts USING btree (status, lease_until);


--
-- Name: ix_oc_callbacks_conversation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_callbacks_conversation_id ON public.oc_callbacks USING btree (conversation_id);


--
-- Name: ix_oc_callbacks_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_callbacks_customer_id ON public.oc_callbacks USING btree (customer_id);


--
-- Name: ix_oc_callbacks_due_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_callbacks_due_at ON public.oc_callbacks USING btree (due_at);


--
-- Name: ix_oc_calls_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_calls_customer_id ON public.oc_calls USING btree (customer_id);


--
-- Name: ix_oc_campaign_targets_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_campaign_targets_due ON public.oc_campaign_targets USING btree (campaign_id, status, next_attempt_at);


--
-- Name: ix_oc_conversations_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_conversations_customer_id ON public.oc_conversations USING btree (customer_id);


--
-- Name: ix_oc_customers_phone; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_customers_phone ON public.oc_customers USING btree (phone);


--
-- Name: ix_oc_do_not_contact_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_do_not_contact_customer_id ON public.oc_do_not_contact USING btree (customer_id);


--
-- Name: ix_oc_do_not_contact_phone; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_do_not_contact_phone ON public.oc_do_not_contact USING btree (phone);


--
-- Name: ix_oc_handoff_events_handoff_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_handoff_events_handoff_id ON public.oc_handoff_events USING btree (handoff_id);


--
-- Name: ix_oc_handoffs_conversation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_handoffs_conversation_id ON public.oc_handoffs USING btree (conversation_id);


--
-- Name: ix_oc_handoffs_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_handoffs_customer_id ON public.oc_handoffs USING btree (customer_id);


--
-- Name: ix_oc_handoffs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_handoffs_status ON public.oc_handoffs USING btree (status);


--
-- Name: ix_oc_messages_conversation; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_messages_conversation ON public.oc_messages USING btree (conversation_id, id);


--
-- Name: ix_oc_offers_customer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_oc_offers_customer_id ON public.oc_offers USING btree (customer_id);


--
-- Name: oc_conversations oc_conversations_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_conversations
    ADD CONSTRAINT oc_conversations_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.oc_customers(customer_id);


--
-- Name: oc_conversations oc_conversations_offer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_conversations
    ADD CONSTRAINT oc_conversations_offer_id_fkey FOREIGN KEY (offer_id) REFERENCES public.oc_offers(id);


--
-- Name: oc_offers oc_offers_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.oc_offers
    ADD CONSTRAINT oc_offers_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.oc_customers(customer_id);


--
-- PostgreSQL database dump complete
--

\unrestrict yOUMsiXAluovZaN6f0aQxolfWmqFKHeR1OtzHITxMyASINtPghmbouvQdxyCO3K

