package privval

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	cmtconn "github.com/cometbft/cometbft/p2p/conn"
)

// sessionResult is how one connection ended.
type sessionResult struct {
	established bool  // the connection (and handshake) came up
	served      bool  // at least one request was answered
	err         error // why it ended
}

// session dials the node, runs the handshake for tcp://, and serves the
// connection until it fails or ctx ends.
func (c *NodeClient) session(ctx context.Context) sessionResult {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	raw, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return sessionResult{err: err}
	}

	// Closing the connection is what unblocks a read, a write or the
	// handshake when ctx ends.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			raw.Close()
		case <-stop:
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		raw.Close()
	}()

	conn := raw
	if c.network == "tcp" {
		if err := raw.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout)); err != nil {
			return sessionResult{err: err}
		}
		sc, err := cmtconn.MakeSecretConnection(raw, c.identity)
		if err != nil {
			return sessionResult{err: fmt.Errorf("secret connection handshake: %w", err)}
		}
		if err := raw.SetDeadline(time.Time{}); err != nil {
			return sessionResult{err: err}
		}
		// The node's identity is ephemeral; its id only tells connections
		// apart in the logs.
		c.log.Info("connected to node", "remote_id", NodeID(sc.RemotePubKey().Bytes()), "local", raw.LocalAddr().String())
		conn = sc
	} else {
		c.log.Info("connected to node")
	}
	if o := c.cfg.Observer; o != nil {
		o.NodeConnected(c.chainID, c.address, true)
		defer o.NodeConnected(c.chainID, c.address, false)
	}
	served, err := c.serve(ctx, conn)
	return sessionResult{established: true, served: served, err: err}
}

// serve answers requests on conn, one at a time as the node sends them,
// until the connection fails, the node sends something that is not a
// request, or ctx ends.
func (c *NodeClient) serve(ctx context.Context, conn net.Conn) (served bool, err error) {
	r := bufio.NewReader(conn)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout)); err != nil {
			return served, err
		}
		frame, err := ReadFrame(r)
		// The node's clock starts when it sends; ours when the frame is
		// in: the difference is one network hop.
		start := time.Now()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("node closed the connection")
			} else if ctx.Err() == nil {
				c.log.Warn("dropping connection: cannot read a request", "error", err)
			}
			return served, fmt.Errorf("read request: %w", err)
		}
		req, err := UnmarshalMessage(frame)
		if err != nil {
			c.log.Warn("dropping connection: malformed request", "error", err, "bytes", len(frame))
			return served, err
		}
		reqCtx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		res, o := handleRequest(reqCtx, c.signer, c.chainID, req)
		cancel()
		if res == nil {
			err := fmt.Errorf("node sent a %s, which is not a request", messageName(req))
			c.log.Warn("dropping connection: unexpected message", "error", err)
			return served, err
		}
		c.logOutcome(ctx, o, time.Since(start))
		if err := conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
			return served, err
		}
		if err := WriteMessage(conn, res); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("dropping connection: cannot write the reply", "error", err, "reply", messageName(res))
			}
			return served, fmt.Errorf("write %s: %w", messageName(res), err)
		}
		c.observe(o, time.Since(start))
		served = true
	}
}

// logOutcome writes the line of one handled request: one per signature at
// info, every refusal at warn, keep-alives at debug.
func (c *NodeClient) logOutcome(ctx context.Context, o outcome, latency time.Duration) {
	if !o.sign {
		switch {
		case o.err != nil:
			c.log.Warn("refused "+o.what+" request", "code", o.err.Code, "error", o.err.Description)
		case o.what == "pubkey":
			c.log.Info("served public key")
		case o.what == "raw bytes":
			c.log.Info("signed raw bytes", "unique_id", o.rawID, "bytes", o.rawLen)
		default:
			c.log.Debug("answered " + o.what)
		}
		return
	}
	attrs := []slog.Attr{
		slog.Int64("height", o.height),
		slog.Int("round", int(o.round)),
		slog.String("block", shortHex(o.block)),
		slog.Duration("latency", latency),
	}
	if o.err != nil {
		attrs = append(attrs, slog.Int("code", int(o.err.Code)), slog.String("error", o.err.Description))
		c.log.LogAttrs(ctx, slog.LevelWarn, "refused "+o.what, attrs...)
		return
	}
	if o.what == "precommit" {
		attrs = append(attrs, slog.Bool("extension", o.ext))
	}
	attrs = append(attrs, slog.Time("timestamp", o.ts))
	c.log.LogAttrs(ctx, slog.LevelInfo, "signed "+o.what, attrs...)
}

// observe reports an answered sign request to the configured Observer.
func (c *NodeClient) observe(o outcome, latency time.Duration) {
	obs := c.cfg.Observer
	if obs == nil || !o.sign {
		return
	}
	r := SignResult{ChainID: c.chainID, Address: c.address, Step: stepOf(o.what),
		Height: o.height, Round: o.round, Latency: latency, Err: o.cause}
	if o.err != nil {
		r.Code = o.err.Code
	}
	obs.SignAnswered(r)
}

func stepOf(what string) Step {
	switch what {
	case "proposal":
		return StepProposal
	case "prevote":
		return StepPrevote
	case "precommit":
		return StepPrecommit
	}
	return 0
}
