"""A national gateway: journal, relay connection, witnessing, deadlines and local API.

Modules, each named for what it holds:

==================  ==============================================================
``core``            the sans-IO protocol state machine (bytes and time in, bytes
                    and events out)
``events``          the events the core and the connection report
``state``           the snapshot the core is rebuilt from at start
``deadlines``       per-precedence deadlines, each missed one reported once
``witness``         judging the relay's checkpoints before cosigning them
``compose``         a posted JSON message made into a body to sign
``journal_file``    the SQLite journal file: its tables, opened durably
``journal``         the core's memory: its state at start, the events it records
``journal_reads``   what the console and the local API read from the journal
``feed_ledger``     the feeds' idempotency ledger (the journal's ``feed_posts``)
``journal_thread``  the journal on its own thread, awaited from the event loop
``records``         journal rows as the console reads them
``connection``      the WebSocket to the relay, reconnecting with backoff
``relay_http``      the relay's HTTP side: consistency proofs and link figures
``hub``             fan-out of events to live listeners
``views``           the JSON of the local API and its event stream
``api``             the local HTTP API routes
``appkeys``         the typed keys the routes read the endpoint and feeds by
``http_io``         reading a request as strict JSON, answering a refusal
``service``         the running endpoint and its entry points
``errors``          the endpoint's refusals of local requests
``feedconfig``      the sensor feeds of ``feeds.toml``: hashed tokens, rates, defaults
``ratelimit``       a token bucket per feed (sans-IO)
``correlation``     a sensor's alert made a warning, or an update of its track's
                    open incident (sans-IO)
``feed_service``    a feed's authentication, idempotency, rate and ledger
``feed_routes``     ``POST /api/alerts``, and the post flow CAP shares
``cap_routes``      CAP 1.2 in (``POST /api/cap``) and out (``/api/messages/{id}.cap``)
==================  ==============================================================

Entry points live in :mod:`hotline.endpoint.service` (``EndpointConfig``,
``make_app``, ``serve_endpoint``, ``run_endpoint``). This package imports
nothing itself, so importing the sans-IO modules (``core``, ``deadlines``,
``witness``, ``compose``, ``events``, ``state``, ``ratelimit``, ``correlation``)
loads no event loop, socket or database.
"""
