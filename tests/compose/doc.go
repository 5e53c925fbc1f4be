// Package compose proves docker-compose.yml, the Dockerfile, .env and the files they
// mount correct by construction, without a Docker daemon: the compose file is read with
// the compose specification's own loader, the Dockerfile with BuildKit's parser, and both
// are checked against the services' settings (services/*/settings, by reflection), the Prometheus
// scrape configuration and the Grafana provisioning. scripts/e2e-compose.sh (`make e2e`)
// runs the same stack for real where a daemon is available.
package compose
