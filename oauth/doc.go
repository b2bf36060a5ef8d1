// Package oauth is Gatehouse's authorization server: fosite composed with the
// authorization-code (with PKCE), refresh-token and client-credentials
// grants, revocation, introspection and OpenID Connect; the /oauth2/*
// endpoints, the consent decision, discovery, and the RequireScope bearer
// middleware that guards resource routes. The adapter between fosite's
// storage interfaces and the storage package lives in store.go.
package oauth
