// A Vercel AI SDK weather agent (`ai` with `@ai-sdk/openai`, experimental_telemetry on), driven by a recording plan.
//
// Run by record.py with NODE_PATH at a node_modules outside the repository (see the README). It reads the plan
// (JSON) on stdin, talks to the model at GENAI_BASE_URL (the proxy) through the provider's default API (the
// Responses API), alternating generateText and streamText from run to run, and exports the SDK's spans with the
// OpenTelemetry JS SDK's OTLP/HTTP (protobuf) exporter to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Each model request
// carries the current span's W3C traceparent (the OpenTelemetry propagation API, in the provider's fetch), so
// the proxy's span joins the agent's trace. After each run it flushes and prints `RUN-END <name> <outcome>`.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const { generateText, streamText, tool, stepCountIs } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");
const { z } = require("zod");
const { context, propagation } = require("@opentelemetry/api");
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base");
const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-proto");
const { resourceFromAttributes } = require("@opentelemetry/resources");

// The same table as weather.py.
const CONDITIONS = {
  Paris: "Sunny, 24 C", Rome: "Clear, 27 C", Oslo: "Rain, 11 C", Lisbon: "Windy, 19 C",
  Madrid: "Hot, 31 C", Berlin: "Cloudy, 17 C", Vienna: "Showers, 15 C", Tokyo: "Humid, 29 C",
};
const MISSPELT = { Pariss: "Paris", Romee: "Rome" };

function forecast(city) {
  if (city in CONDITIONS) return `${CONDITIONS[city]} in ${city}`;
  const hint = MISSPELT[city] ? ` Did you mean '${MISSPELT[city]}'?` : "";
  throw new Error(`Error: unknown city '${city}'.${hint}`);
}

// Seeded ids (mulberry32), so a re-recording gives the same trace and span ids.
function seededIds(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0).toString(16).padStart(8, "0");
  };
  return {
    generateTraceId: () => next() + next() + next() + next(),
    generateSpanId: () => next() + next(),
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const plan = await readStdin();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": "weather-agent-vercel-ai" }),
    idGenerator: seededIds(plan.seed),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  const tracedFetch = (url, init = {}) => {
    const headers = new Headers(init.headers);
    propagation.inject(context.active(), headers, { set: (carrier, key, value) => carrier.set(key, value) });
    return fetch(url, { ...init, headers });
  };
  for (const [index, run] of plan.runs.entries()) {
    const openai = createOpenAI({
      baseURL: process.env.GENAI_BASE_URL,
      apiKey: process.env.GENAI_API_KEY,
      headers: { "x-mock-scenario": run.scenarios.join(",") },
      fetch: tracedFetch,
    });
    const settings = {
      model: openai(plan.model),
      system: "Answer weather questions. Use get_weather for current conditions.",
      tools: {
        get_weather: tool({
          description: "Current weather for a city.",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => forecast(city),
        }),
      },
      stopWhen: stepCountIs(run.max_steps),
      maxRetries: 0,
      experimental_telemetry: { isEnabled: true, functionId: "weather-agent" },
    };
    const messages = [];
    let outcome = "answered";
    for (const turn of run.turns) {
      messages.push({ role: "user", content: turn });
      let response, finishReason;
      if (index % 2 === 0) {
        const result = await generateText({ ...settings, messages });
        response = result.response;
        finishReason = result.finishReason;
      } else {
        const result = streamText({ ...settings, messages });
        await result.consumeStream();
        response = await result.response;
        finishReason = await result.finishReason;
      }
      messages.push(...response.messages);
      if (finishReason === "tool-calls") outcome = `stopped: step limit of ${run.max_steps}`;
    }
    await provider.forceFlush();
    console.log(`RUN-END ${run.name} ${outcome}`);
  }
  await provider.shutdown();
}

await main();
