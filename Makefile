# Parley. `make help` lists the targets.

SHELL := /bin/bash
GO    ?= go
RUN   := .run
BIN   := $(RUN)/bin/parley

# The local cluster: node i listens on HTTP 818i, gossip 795i, remote 819i,
# raft 830i; node1 bootstraps the replicated store, the others become voters.
# Every plane runs with the certificates and gossip key of CLUSTER_CERTS
# (docs/security.md), made by `parley certs` on the first run.
CLUSTER_DIR   := $(RUN)/cluster
CLUSTER_CERTS := $(CLUSTER_DIR)/certs
CLUSTER_NODES := 1 2 3

.PHONY: help run build cluster cluster-status cluster-stop test test-go check-generated check-third-party check-size generate lint bench chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: ## run one node on 127.0.0.1:8080 with its data in ./data
	$(GO) run ./cmd/parley serve --data-dir ./data

build: ## build the parley binary into .run/bin
	$(GO) build -o $(BIN) ./cmd/parley

cluster: build ## start three local nodes in the background (pids, logs, data in .run/cluster)
	@mkdir -p $(CLUSTER_DIR)
	@for i in $(CLUSTER_NODES); do \
	  pidfile=$(CLUSTER_DIR)/node$$i.pid; \
	  if [ -f $$pidfile ] && kill -0 $$(cat $$pidfile) 2>/dev/null; then \
	    echo "node$$i is already running (pid $$(cat $$pidfile)); make cluster-stop first"; exit 1; fi; \
	done
	@for i in $(CLUSTER_NODES); do [ -f $(CLUSTER_CERTS)/node$$i.pem ] || missing=1; done; \
	if [ -n "$$missing" ]; then $(BIN) certs --out $(CLUSTER_CERTS) $(addprefix node,$(CLUSTER_NODES)) >/dev/null && echo "certificates and gossip key in $(CLUSTER_CERTS)"; fi
	@# node1 creates the demo tenant (its key goes to node1.log); every node
	@# then serves the same tenants file, so the key works on all three.
	@for i in $(CLUSTER_NODES); do \
	  mkdir -p $(CLUSTER_DIR)/node$$i; \
	  extra="--raft-bootstrap"; [ $$i = 1 ] || extra="--tenants $(CLUSTER_DIR)/node1/data/tenants.json"; \
	  nohup $(BIN) serve --node-name node$$i \
	    --http-addr 127.0.0.1:818$$i --gossip-addr 127.0.0.1:795$$i --remote-addr 127.0.0.1:819$$i --raft-addr 127.0.0.1:830$$i \
	    --join 127.0.0.1:7951,127.0.0.1:7952,127.0.0.1:7953 \
	    --data-dir $(CLUSTER_DIR)/node$$i/data $$extra \
	    --tls-ca $(CLUSTER_CERTS)/ca.pem --tls-cert $(CLUSTER_CERTS)/node$$i.pem --tls-key $(CLUSTER_CERTS)/node$$i-key.pem \
	    --gossip-key-file $(CLUSTER_CERTS)/gossip.key \
	    > $(CLUSTER_DIR)/node$$i.log 2>&1 & \
	  echo $$! > $(CLUSTER_DIR)/node$$i.pid; \
	  if [ $$i = 1 ]; then \
	    for try in $$(seq 1 100); do [ -f $(CLUSTER_DIR)/node1/data/tenants.json ] && break; sleep 0.1; done; \
	  fi; \
	done
	@for i in $(CLUSTER_NODES); do \
	  for try in $$(seq 1 100); do \
	    curl -sf -o /dev/null 127.0.0.1:818$$i/readyz && break; \
	    if ! kill -0 $$(cat $(CLUSTER_DIR)/node$$i.pid) 2>/dev/null; then \
	      echo "node$$i exited; its log:"; tail -5 $(CLUSTER_DIR)/node$$i.log; exit 1; fi; \
	    sleep 0.2; \
	  done; \
	done
	@# Ready for writes once node1's replicated store counts every node a voter.
	@for try in $$(seq 1 50); do \
	  [ $$(curl -s 127.0.0.1:8181/readyz | grep -o '"voters":\[[^]]*\]' | grep -o node | wc -l) -ge 3 ] && break; sleep 0.2; \
	done
	@$(MAKE) --no-print-directory cluster-status
	@key=$$(grep -o 'pk_dev_[0-9a-f]*' $(CLUSTER_DIR)/node1.log | head -1); \
	if [ -n "$$key" ]; then (umask 077; echo $$key > $(CLUSTER_DIR)/demo-key); fi; \
	[ -n "$$key" ] || key=$$(cat $(CLUSTER_DIR)/demo-key 2>/dev/null); \
	if [ -n "$$key" ]; then \
	  echo "API key of tenant demo (kept in $(CLUSTER_DIR)/demo-key): $$key"; \
	  echo "Try:  curl -N -H 'Authorization: Bearer $$key' -H 'Content-Type: application/json' -d '{\"sessionId\":\"5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10\",\"message\":\"Hello\"}' 127.0.0.1:8182/chat"; \
	else \
	  echo "Try:  curl -s 127.0.0.1:8181/readyz"; \
	fi
	@echo "Logs: $(CLUSTER_DIR)/node{1,2,3}.log   Stop: make cluster-stop"

cluster-status: ## show each local node's pid, readiness, view of the membership, the store's voters and whether its planes run TLS
	@for i in $(CLUSTER_NODES); do \
	  pidfile=$(CLUSTER_DIR)/node$$i.pid; \
	  if [ ! -f $$pidfile ] || ! kill -0 $$(cat $$pidfile) 2>/dev/null; then \
	    echo "node$$i  http://127.0.0.1:818$$i  not running"; continue; fi; \
	  body=$$(curl -s 127.0.0.1:818$$i/readyz); \
	  members=$$(echo "$$body" | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort | paste -sd, -); \
	  voters=$$(echo "$$body" | grep -o '"voters":\[[^]]*\]' | grep -o '"[^"]*"' | tr -d '"' | grep -v voters | sort | paste -sd, -); \
	  state=$$(echo "$$body" | grep -q '"status":"ready"' && echo ready || echo "not ready: $$body"); \
	  tls=$$(echo "$$body" | grep -o '"tls":[a-z]*' | cut -d: -f2); \
	  echo "node$$i  http://127.0.0.1:818$$i  pid $$(cat $$pidfile)  $$state  members: $${members:-?}  voters: $${voters:-?}  tls: $${tls:-?}"; \
	done

cluster-stop: ## stop the nodes `make cluster` started (SIGTERM: graceful leave), by pid
	@for i in $(CLUSTER_NODES); do \
	  pidfile=$(CLUSTER_DIR)/node$$i.pid; [ -f $$pidfile ] || continue; \
	  pid=$$(cat $$pidfile); \
	  if kill -0 $$pid 2>/dev/null; then kill -TERM $$pid; fi; \
	done
	@for i in $(CLUSTER_NODES); do \
	  pidfile=$(CLUSTER_DIR)/node$$i.pid; [ -f $$pidfile ] || continue; \
	  pid=$$(cat $$pidfile); \
	  for try in $$(seq 1 150); do kill -0 $$pid 2>/dev/null || break; sleep 0.2; done; \
	  if kill -0 $$pid 2>/dev/null; then echo "node$$i (pid $$pid) did not leave in 30 s; killing it"; kill -KILL $$pid; fi; \
	  rm -f $$pidfile; echo "node$$i stopped"; \
	done

chaos: ## watch 300 sessions under load lose nothing to a SIGKILL; a node restarted and rebuilt; 2 of 3 lost
	$(GO) test -count=1 -v -run 'SurviveSIGKILLUnderLoad|Rejoins' ./tests 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL)|durability_test'

test: check-generated check-third-party check-size lint test-go ## everything CI runs: generated code current, third_party checked, no large file, lint, race tests

test-go:
	$(GO) test -race -timeout 8m ./...

generate: ## regenerate the Go code of every .proto (pure Go: cmd/protogen)
	$(GO) run ./cmd/protogen

check-generated: ## fail when generated code differs from its .proto
	$(GO) run ./cmd/protogen -check

check-third-party: ## fail unless third_party/protoactor-go is its pinned upstream plus its patches, exactly
	@third_party/check.sh

# A tracked file over 1 MiB is almost always a build output or a data dump.
MAX_FILE_BYTES := 1048576
check-size: ## fail when a file git tracks is over 1 MiB
	@big=$$(git ls-files -z | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk -v max=$(MAX_FILE_BYTES) '$$1 > max'); \
	  if [ -n "$$big" ]; then echo "tracked files over $(MAX_FILE_BYTES) bytes:"; echo "$$big"; exit 1; fi

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^third_party/') 2>&1); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench: ## measure against the seed's latency targets (under 5 min): table, .run/bench.json, docs/benchmarks.md
	$(GO) build -o $(RUN)/bin/parley-bench ./cmd/parley-bench
	$(RUN)/bin/parley-bench --json $(RUN)/bench.json --docs docs/benchmarks.md

.PHONY: bench-quick
bench-quick: ## a 30-second subset of make bench on one node (writes only .run/bench-quick.json)
	$(GO) build -o $(RUN)/bin/parley-bench ./cmd/parley-bench
	$(RUN)/bin/parley-bench --quick --json $(RUN)/bench-quick.json
