/** The public names nginx serves on the VPS. */
export interface SiteSettings {
  readonly hostnames?: { readonly n8n?: unknown; readonly sim?: unknown; readonly gateway?: unknown };
}

/** A problem with the sites, located relative to the object holding `hostnames`. */
export interface SiteIssue {
  readonly path: ['hostnames', SiteKey];
  readonly input: unknown;
  readonly message: string;
}

export const SITE_KEYS = ['n8n', 'sim', 'gateway'] as const;
export type SiteKey = (typeof SITE_KEYS)[number];

/**
 * Rules across the site names, shared by the config schema and the bundle renderer: nginx routes by
 * host name, so two services on one name would leave one unreachable.
 */
export function siteIssues({ hostnames }: SiteSettings): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const seen = new Map<unknown, string>();
  for (const key of SITE_KEYS) {
    const host = hostnames?.[key];
    if (typeof host !== 'string') continue;
    const first = seen.get(host);
    if (first) issues.push({ path: ['hostnames', key], input: host, message: `a host name different from hostnames.${first}` });
    else seen.set(host, key);
  }
  return issues;
}
