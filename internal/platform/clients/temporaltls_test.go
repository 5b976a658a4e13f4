package clients_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// pki is a throw-away CA with a server certificate for 127.0.0.1 and a client certificate,
// written as PEM files.
type pki struct {
	dir                   string
	ca                    *x509.CertPool
	server                tls.Certificate
	clientCert, clientKey string
	caFile                string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	issue := func(serial int64, usage x509.ExtKeyUsage, name string) ([]byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	srvCert, srvKey := issue(2, x509.ExtKeyUsageServerAuth, "temporal")
	server, err := tls.X509KeyPair(srvCert, srvKey)
	require.NoError(t, err)
	cliCert, cliKey := issue(3, x509.ExtKeyUsageClientAuth, "worker")
	return pki{dir: dir, ca: pool, server: server,
		clientCert: write("client.pem", cliCert), clientKey: write("client-key.pem", cliKey),
		caFile: write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
}

// systemInfo answers GetSystemInfo, which the SDK calls when it connects; every other call of
// the workflow service is unimplemented.
type systemInfo struct {
	workflowservice.UnimplementedWorkflowServiceServer
}

func (systemInfo) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// tlsFrontend is a gRPC server that answers what the Temporal client's health check needs
// (GetSystemInfo and the gRPC health protocol), behind TLS. Not a Temporal server: the dev
// server cannot serve TLS, and what is under test is our client's side of the handshake and
// of the API key (real crypto/tls and grpc-go on both ends), not Temporal. Its TLS requires a
// client certificate from the CA and, when apiKey is set, every call must carry
// "authorization: Bearer <apiKey>".
func tlsFrontend(t *testing.T, p pki, apiKey string) string {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.ca,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if apiKey != "" {
			md, _ := metadata.FromIncomingContext(ctx)
			if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+apiKey {
				return nil, status.Error(codes.Unauthenticated, "bad API key")
			}
		}
		return next(ctx, req)
	}
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(auth))
	h := health.NewServer()
	h.SetServingStatus("temporal.api.workflowservice.v1.WorkflowService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	workflowservice.RegisterWorkflowServiceServer(srv, systemInfo{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func openWith(t *testing.T, env map[string]string) (*clients.Clients, error) {
	t.Helper()
	base := map[string]string{"APP_ENV": "dev"}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := base[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	c, err := clients.Open(context.Background(), cfg, testenv.Logger(t))
	if err == nil {
		t.Cleanup(func() { _ = c.Close(context.Background()) })
	}
	return c, err
}

// With TEMPORAL_TLS_CERT/KEY/CA the Temporal client completes a mutual TLS handshake with a
// frontend that demands a client certificate; without the certificate it cannot.
func TestTemporalMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	addr := tlsFrontend(t, p, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := openWith(t, map[string]string{"TEMPORAL_ADDRESS": addr,
		"TEMPORAL_TLS_CERT": p.clientCert, "TEMPORAL_TLS_KEY": p.clientKey, "TEMPORAL_TLS_CA": p.caFile})
	require.NoError(t, err)
	require.NoError(t, c.PingTemporal(ctx), "mTLS handshake and health check")

	noCert, err := openWith(t, map[string]string{"TEMPORAL_ADDRESS": addr, "TEMPORAL_TLS_CA": p.caFile})
	require.NoError(t, err)
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	require.Error(t, noCert.PingTemporal(short), "the frontend refuses a client without a certificate")

	plain, err := openWith(t, map[string]string{"TEMPORAL_ADDRESS": addr})
	require.NoError(t, err)
	short2, cancelShort2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort2()
	require.Error(t, plain.PingTemporal(short2), "plaintext does not reach a TLS frontend")
}

// TEMPORAL_API_KEY is sent as a bearer token on every call (Temporal Cloud), over TLS.
func TestTemporalAPIKey(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	addr := tlsFrontend(t, p, "key-0123456789")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tlsEnv := map[string]string{"TEMPORAL_ADDRESS": addr, "TEMPORAL_TLS_CERT": p.clientCert, "TEMPORAL_TLS_KEY": p.clientKey, "TEMPORAL_TLS_CA": p.caFile}

	withKey := map[string]string{"TEMPORAL_API_KEY": "key-0123456789"}
	for k, v := range tlsEnv {
		withKey[k] = v
	}
	c, err := openWith(t, withKey)
	require.NoError(t, err)
	require.NoError(t, c.PingTemporal(ctx))

	withKey["TEMPORAL_API_KEY"] = "wrong-key"
	wrong, err := openWith(t, withKey)
	require.NoError(t, err)
	require.Error(t, wrong.PingTemporal(ctx))
}
