// Package helm tests the Helm chart in deploy/helm/ecomstream without a cluster: it lints
// the chart and renders it with Helm's own Go packages for several value sets, decodes
// every manifest strictly into its real API type (Kubernetes, Prometheus Operator, KEDA),
// checks the services' environments against their settings, and checks that the chart's
// dashboards and rules are the repository's.
package helm
