export function ensureSwiftShader(): string;
export function swiftshaderEnv(): Record<string, string>;
export function hasSystemVulkanDriver(): boolean;
export function swiftshaderEnvIfNoGpu(): Record<string, string>;
